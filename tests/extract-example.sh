#!/bin/sh
# Print the C example that follows the "<!-- example -->" marker in $1, so
# that the test suite compiles and runs README's example exactly as written.
set -eu
awk '
	/<!-- example -->/ { armed = 1; next }
	armed && /^```c/ { inside = 1; next }
	inside && /^```/ { exit }
	inside { print }
' "$1"
