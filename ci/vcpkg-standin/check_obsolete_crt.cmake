# Stand-in for vcpkg's post-build check "DLLs that link with obsolete C RunTime (CRT) DLLs":
# on Windows triplets, every DLL in bin/ and debug/bin/ whose imports (objdump -p) name one of
# the CRTs below fails the port, unless the portfile set VCPKG_POLICY_ALLOW_OBSOLETE_MSVCRT.
# Also runs alone: cmake -DCURRENT_PACKAGES_DIR=<pkg> [-DVCPKG_POLICY_ALLOW_OBSOLETE_MSVCRT=enabled]
#                         -P check_obsolete_crt.cmake
cmake_policy(SET CMP0057 NEW) # IN_LIST, also when run alone
set(SHK_STANDIN_OBSOLETE_CRTS msvcp100.dll msvcp100d.dll msvcp110.dll msvcp110_win.dll msvcp60.dll
  msvcrt.dll msvcr100.dll msvcr100d.dll msvcr100_clr0400.dll msvcr110.dll msvcrt20.dll msvcrt40.dll)

# shk_standin_dll_imports(<out var> <pe file>): the DLL names a PE file imports, lower case.
function(shk_standin_dll_imports out file)
  find_program(SHK_STANDIN_OBJDUMP NAMES x86_64-w64-mingw32-objdump objdump REQUIRED)
  execute_process(COMMAND "${SHK_STANDIN_OBJDUMP}" -p "${file}" OUTPUT_VARIABLE dump RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "objdump -p ${file} failed (${rc})")
  endif()
  string(REGEX MATCHALL "DLL Name: [^\n]+" lines "${dump}")
  set(names "")
  foreach(line ${lines})
    string(REGEX REPLACE "DLL Name: *" "" name "${line}")
    string(STRIP "${name}" name)
    string(TOLOWER "${name}" name)
    list(APPEND names "${name}")
  endforeach()
  set(${out} ${names} PARENT_SCOPE)
endfunction()

function(shk_standin_check_obsolete_crt)
  if(VCPKG_POLICY_ALLOW_OBSOLETE_MSVCRT STREQUAL "enabled")
    message(STATUS "obsolete CRT check skipped: VCPKG_POLICY_ALLOW_OBSOLETE_MSVCRT is enabled")
    return()
  endif()
  file(GLOB dlls "${CURRENT_PACKAGES_DIR}/bin/*.dll" "${CURRENT_PACKAGES_DIR}/debug/bin/*.dll")
  set(offenders "")
  foreach(dll ${dlls})
    shk_standin_dll_imports(imports "${dll}")
    foreach(crt ${SHK_STANDIN_OBSOLETE_CRTS})
      if(crt IN_LIST imports)
        file(RELATIVE_PATH rel "${CURRENT_PACKAGES_DIR}" "${dll}")
        list(APPEND offenders "${rel} (${crt})")
      endif()
    endforeach()
  endforeach()
  if(offenders)
    list(JOIN offenders "\n  " text)
    message(FATAL_ERROR "DLLs that link with obsolete C RunTime (CRT) DLLs were installed:\n  ${text}\n"
      "(set(VCPKG_POLICY_ALLOW_OBSOLETE_MSVCRT enabled) in the portfile allows them)")
  endif()
  message(STATUS "obsolete CRT check: no DLL links an obsolete CRT")
endfunction()

if(CMAKE_SCRIPT_MODE_FILE STREQUAL CMAKE_CURRENT_LIST_FILE)
  if(NOT DEFINED CURRENT_PACKAGES_DIR)
    message(FATAL_ERROR "CURRENT_PACKAGES_DIR is required")
  endif()
  get_filename_component(CURRENT_PACKAGES_DIR "${CURRENT_PACKAGES_DIR}" ABSOLUTE)
  shk_standin_check_obsolete_crt()
endif()
