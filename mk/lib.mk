# libvkv: shared library (versioned soname, exports fixed by lib/libvkv.map)
# and static archive.

LIB_SONAME := libvkv.so.$(VERSION_MAJOR)
LIB_SONAME_FULL := libvkv.so.$(VERSION)
LIB_SO := $(B)/$(LIB_SONAME_FULL)
LIB_A := $(B)/libvkv.a
LIB_SRCS := $(sort $(wildcard lib/*.c))
LIB_OBJS := $(patsubst lib/%.c,$(B)/lib/%.o,$(LIB_SRCS))
LIB_LIBS := -ldl -lnuma -luring -pthread

ALL_TARGETS += $(LIB_SO) $(LIB_A) $(B)/libvkv.so

$(B)/lib/%.o: lib/%.c $(B)/lib/%.d
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(DEPFLAGS) -fPIC -fvisibility=hidden -Iinclude -Ilib -c $< -o $@

$(LIB_SO): $(LIB_OBJS) lib/libvkv.map
	$(CC) -shared -Wl,-soname,$(LIB_SONAME) -Wl,--version-script=lib/libvkv.map \
		-Wl,-z,defs -o $@ $(LIB_OBJS) $(ALL_LDFLAGS) $(LIB_LIBS)

$(B)/libvkv.so: $(LIB_SO)
	ln -sf $(LIB_SONAME_FULL) $(B)/$(LIB_SONAME)
	ln -sf $(LIB_SONAME_FULL) $@

$(LIB_A): $(LIB_OBJS)
	rm -f $@
	ar rcs $@ $^

DEP_FILES += $(LIB_OBJS:.o=.d)
