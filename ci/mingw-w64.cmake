# Cross-compiles for Windows x86-64 with mingw-w64 and runs the results under wine.
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)
set(CMAKE_C_COMPILER x86_64-w64-mingw32-gcc)
set(CMAKE_CXX_COMPILER x86_64-w64-mingw32-g++)
set(CMAKE_RC_COMPILER x86_64-w64-mingw32-windres)
list(APPEND CMAKE_FIND_ROOT_PATH /usr/x86_64-w64-mingw32) # keeps roots given with -D
# Cross-built dependencies (CMocka for mingw, built by ci/test.sh) are found through this list.
if(DEFINED ENV{SHK_MINGW_PREFIX})
  list(APPEND CMAKE_FIND_ROOT_PATH $ENV{SHK_MINGW_PREFIX})
endif()
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
# No libgcc_s_seh-1.dll to carry around: every executable and DLL links libgcc statically.
set(CMAKE_EXE_LINKER_FLAGS_INIT "-static-libgcc")
set(CMAKE_SHARED_LINKER_FLAGS_INIT "-static-libgcc")
find_program(SHK_WINE NAMES wine wine64)
if(SHK_WINE)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${SHK_WINE})
endif()
