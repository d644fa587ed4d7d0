# make check-layers: libvkv's files call only downward, per lib/LAYERS, and
# in no cycle; read from the compiled objects (scripts/check-layers.sh).

.PHONY: check-layers
CHECK_TARGETS += check-layers

check-layers: $(LIB_OBJS) lib/LAYERS scripts/check-layers.sh
	@echo "== check-layers"
	@sh scripts/check-layers.sh -t lib/LAYERS $(B)/lib
