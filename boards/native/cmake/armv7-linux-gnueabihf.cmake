# Cross build for ARMv7 (hard float, Thumb-2) with Debian's gcc-arm-linux-gnueabihf/g++-arm-linux-gnueabihf.
# The board's libraries come from Debian's armhf packages unpacked under IOP_SYSROOT (tools/build/native.mjs --arm
# makes it with `apt-get download` and `dpkg -x`). Run the result with qemu-arm (see README.md).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR armv7l)
set(CMAKE_C_COMPILER arm-linux-gnueabihf-gcc)
set(CMAKE_CXX_COMPILER arm-linux-gnueabihf-g++)
set(CMAKE_C_FLAGS_INIT "-march=armv7-a -mthumb -mfpu=vfpv3-d16 -mfloat-abi=hard")
# -Wno-psabi: GCC notes that an ABI detail changed in GCC 7.1, which concerns nothing built here.
set(CMAKE_CXX_FLAGS_INIT "-march=armv7-a -mthumb -mfpu=vfpv3-d16 -mfloat-abi=hard -Wno-psabi")
set(IOP_LIBRARY_ARCH arm-linux-gnueabihf)
