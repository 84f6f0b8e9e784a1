# Stand-in for vcpkg's RUNPATH fix-up (z_vcpkg_fixup_rpath), run after the portfile on Linux
# triplets: every installed ELF file (not links) in lib/, bin/, tools/ and their debug/ twins gets
# RUNPATH "$ORIGIN" (libraries in lib/) or "$ORIGIN:$ORIGIN/<path to lib/>" (programs), followed
# by its own entries that were relative to $ORIGIN; other entries (build folders) are dropped.
# Needs patchelf (the real tool downloads one when none is installed).
function(shk_standin_fixup_rpath)
  find_program(patchelf patchelf)
  if(NOT patchelf)
    message(FATAL_ERROR "patchelf is required for the RUNPATH fix-up (apt-get install patchelf)")
  endif()
  file(GLOB_RECURSE candidates LIST_DIRECTORIES false
    "${CURRENT_PACKAGES_DIR}/lib/*" "${CURRENT_PACKAGES_DIR}/bin/*" "${CURRENT_PACKAGES_DIR}/tools/*"
    "${CURRENT_PACKAGES_DIR}/debug/lib/*" "${CURRENT_PACKAGES_DIR}/debug/bin/*"
    "${CURRENT_PACKAGES_DIR}/debug/tools/*")
  foreach(elf ${candidates})
    if(IS_SYMLINK "${elf}")
      continue()
    endif()
    file(READ "${elf}" magic LIMIT 4 HEX)
    if(NOT magic STREQUAL "7f454c46")
      continue()
    endif()
    get_filename_component(dir "${elf}" DIRECTORY)
    set(prefix "${CURRENT_PACKAGES_DIR}")
    string(FIND "${elf}" "${CURRENT_PACKAGES_DIR}/debug/" at)
    if(at EQUAL 0)
      set(prefix "${CURRENT_PACKAGES_DIR}/debug")
    endif()
    file(RELATIVE_PATH to_lib "${dir}" "${prefix}/lib")
    if(to_lib STREQUAL "")
      set(rpath "$ORIGIN")
    else()
      set(rpath "$ORIGIN" "$ORIGIN/${to_lib}")
    endif()
    execute_process(COMMAND "${patchelf}" --print-rpath "${elf}" OUTPUT_VARIABLE old
      OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE rc)
    if(NOT rc EQUAL 0) # an object file or a static archive member: not an executable or a library
      continue()
    endif()
    string(REPLACE ":" ";" old "${old}")
    foreach(entry ${old})
      string(REGEX REPLACE "/+$" "" entry "${entry}")
      if(entry MATCHES "^\\$ORIGIN")
        list(APPEND rpath "${entry}")
      endif()
    endforeach()
    list(REMOVE_DUPLICATES rpath)
    list(JOIN rpath ":" joined)
    shk_standin_run("${patchelf}" --set-rpath "${joined}" "${elf}")
  endforeach()
endfunction()
