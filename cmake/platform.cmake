# What the chosen OS backend needs from the toolchain: definitions, libraries, link options.
set(SHK_PLATFORM_DEFINITIONS "")
set(SHK_PLATFORM_LIBRARIES "")
set(SHK_PLATFORM_SHARED_LINK_OPTIONS "")
if(MSVC)
  # <stdatomic.h> exists in MSVC's C mode only behind this switch (Visual Studio 2022 17.5+).
  # Applies to every target defined after this file is included (library, tools, tests, ...).
  if(CMAKE_C_COMPILER_VERSION VERSION_LESS 19.35)
    message(FATAL_ERROR "shmkit needs MSVC 19.35 (Visual Studio 2022 17.5) or newer for C11 "
      "atomics; found ${CMAKE_C_COMPILER_VERSION}")
  endif()
  # C only: the version resource (rc.exe) and any CUDA sources get other compilers.
  add_compile_options($<$<COMPILE_LANGUAGE:C>:/experimental:c11atomics>)
  if(CMAKE_VERSION VERSION_LESS 3.21)
    # Older CMake does not turn C_STANDARD 11 into /std:c11 for MSVC.
    add_compile_options($<$<COMPILE_LANGUAGE:C>:/std:c11>)
  endif()
endif()
if(WIN32)
  list(APPEND SHK_PLATFORM_DEFINITIONS WIN32_LEAN_AND_MEAN NOMINMAX _WIN32_WINNT=0x0601)
  list(APPEND SHK_PLATFORM_LIBRARIES advapi32 dbghelp psapi)
  if(MINGW)
    # _Thread_local in a mingw DLL pulls in libgcc_s_seh-1.dll unless libgcc is static.
    list(APPEND SHK_PLATFORM_SHARED_LINK_OPTIONS -static-libgcc)
  endif()
else()
  list(APPEND SHK_PLATFORM_DEFINITIONS _GNU_SOURCE)
  find_package(Threads REQUIRED)
  list(APPEND SHK_PLATFORM_LIBRARIES Threads::Threads ${CMAKE_DL_LIBS})
  include(CheckLibraryExists)
  check_library_exists(rt shm_open "" SHK_HAVE_LIBRT)
  if(SHK_HAVE_LIBRT)
    list(APPEND SHK_PLATFORM_LIBRARIES rt)
  endif()
endif()
