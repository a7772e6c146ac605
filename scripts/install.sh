#!/usr/bin/env bash
# Installs evloop as a C library: the header, the static and shared
# libraries (with soname and version links), a pkg-config file and a CMake
# package config. One command from a checkout:
#
#   bash scripts/install.sh --prefix /usr/local
#
# Options: --prefix DIR (default /usr/local), --libdir DIR (default
# PREFIX/lib), --destdir DIR (staging root for packagers, as make's
# DESTDIR), --profile release|debug (default release), --no-build (install
# what is built already). Honours CARGO_TARGET_DIR. Afterwards a C program
# builds with only:  cc app.c $(pkg-config --cflags --libs evloop)
# (set PKG_CONFIG_PATH=PREFIX/lib/pkgconfig for a prefix pkg-config does
# not search, and LD_LIBRARY_PATH=PREFIX/lib to run it from there).
set -euo pipefail
cd "$(dirname "$0")/.."

prefix=/usr/local libdir= destdir= profile=release build=1
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix=$2; shift 2 ;;
    --libdir) libdir=$2; shift 2 ;;
    --destdir) destdir=$2; shift 2 ;;
    --profile) profile=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$prefix" in /*) ;; *) prefix="$PWD/$prefix" ;; esac
libdir=${libdir:-$prefix/lib}
includedir=$prefix/include

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
major=${version%%.*}; rest=${version#*.}; minor=${rest%%.*}
if [ "$major" = 0 ]; then abi="0.$minor"; else abi=$major; fi

case "$profile" in
  release) cargo_profile=release; dir=release ;;
  debug) cargo_profile=dev; dir=debug ;;
  *) echo "install.sh: --profile is release or debug" >&2; exit 2 ;;
esac
target=${CARGO_TARGET_DIR:-target}
if [ "$build" = 1 ]; then
  cargo build --quiet --lib --profile "$cargo_profile"
fi
built=$target/$dir
for f in libevloop.a libevloop.so; do
  [ -f "$built/$f" ] || { echo "install.sh: $built/$f is missing (build first)" >&2; exit 1; }
done

install -d "$destdir$includedir" "$destdir$libdir/pkgconfig" "$destdir$libdir/cmake/evloop"
install -m 644 include/evloop.h "$destdir$includedir/evloop.h"
install -m 644 "$built/libevloop.a" "$destdir$libdir/libevloop.a"
install -m 755 "$built/libevloop.so" "$destdir$libdir/libevloop.so.$version"
ln -sf "libevloop.so.$version" "$destdir$libdir/libevloop.so.$abi"
ln -sf "libevloop.so.$abi" "$destdir$libdir/libevloop.so"

cat > "$destdir$libdir/pkgconfig/evloop.pc" <<PC
prefix=$prefix
libdir=$libdir
includedir=$includedir

Name: evloop
Description: A callback-based event loop (libuv / Node / asyncio style)
Version: $version
Cflags: -I\${includedir}
Libs: -L\${libdir} -levloop
Libs.private: -lpthread -ldl -lm -lrt -lutil -lgcc_s -lc
PC

cat > "$destdir$libdir/cmake/evloop/evloopConfig.cmake" <<CM
# evloop's CMake package: find_package(evloop) gives the target evloop::evloop
# (the shared library) and evloop::evloop_static.
add_library(evloop::evloop SHARED IMPORTED)
set_target_properties(evloop::evloop PROPERTIES
  IMPORTED_LOCATION "$libdir/libevloop.so.$version"
  IMPORTED_SONAME "libevloop.so.$abi"
  INTERFACE_INCLUDE_DIRECTORIES "$includedir")
add_library(evloop::evloop_static STATIC IMPORTED)
set_target_properties(evloop::evloop_static PROPERTIES
  IMPORTED_LOCATION "$libdir/libevloop.a"
  INTERFACE_INCLUDE_DIRECTORIES "$includedir"
  INTERFACE_LINK_LIBRARIES "pthread;dl;m;rt;util;gcc_s")
set(evloop_VERSION "$version")
CM

cat > "$destdir$libdir/cmake/evloop/evloopConfigVersion.cmake" <<CV
set(PACKAGE_VERSION "$version")
if(PACKAGE_FIND_VERSION VERSION_GREATER PACKAGE_VERSION)
  set(PACKAGE_VERSION_COMPATIBLE FALSE)
elseif("$major" STREQUAL "0" AND NOT PACKAGE_FIND_VERSION_MINOR EQUAL "$minor")
  set(PACKAGE_VERSION_COMPATIBLE FALSE)
elseif(NOT PACKAGE_FIND_VERSION_MAJOR EQUAL "$major")
  set(PACKAGE_VERSION_COMPATIBLE FALSE)
else()
  set(PACKAGE_VERSION_COMPATIBLE TRUE)
  if(PACKAGE_FIND_VERSION STREQUAL PACKAGE_VERSION)
    set(PACKAGE_VERSION_EXACT TRUE)
  endif()
endif()
CV

echo "installed evloop $version into $destdir$prefix (libdir $libdir, soname libevloop.so.$abi)"
