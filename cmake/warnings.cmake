# Warning flags for every target of this project; SHK_WERROR turns them into errors.
function(shmkit_warnings target)
  if(CMAKE_C_COMPILER_ID MATCHES "GNU|Clang")
    target_compile_options(${target} PRIVATE -Wall -Wextra -Wshadow -Wstrict-prototypes
      -Wmissing-prototypes -Wno-unused-parameter)
    if(SHK_WERROR)
      target_compile_options(${target} PRIVATE -Werror)
    endif()
  elseif(MSVC)
    # /W4 reports some standard C as "nonstandard extension"; these are off, each for a reason:
    #   4100  unreferenced parameter (as -Wno-unused-parameter: callbacks ignore some arguments)
    #   4996  the CRT's "unsafe"/POSIX-name deprecations (fopen, getenv, strerror, ...): we keep
    #         the portable C names rather than the _s or _-prefixed MSVC-only ones
    #   4200  flexible array members (C99) reported as zero-sized arrays
    #   4204  non-constant aggregate initializers (C99) reported as an extension
    #   4221  initializing a struct member with the address of a local (C99) likewise
    #   4324  "structure padded due to alignment specifier": _Alignas(64) asks for exactly that
    # C only: the DLL's version resource goes to rc.exe, which takes none of these.
    set(flags /W4 /wd4100 /wd4996 /wd4200 /wd4204 /wd4221 /wd4324)
    target_compile_options(${target} PRIVATE "$<$<COMPILE_LANGUAGE:C>:${flags}>")
    if(SHK_WERROR)
      target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:C>:/WX>)
    endif()
  endif()
endfunction()
