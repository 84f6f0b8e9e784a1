# Finds CMocka as the imported target shk::cmocka. Works with Debian's 1.1.5 config (variables
# only), newer configs (cmocka::cmocka) and a plain prefix such as the mingw build in ci/.
find_path(SHK_CMOCKA_INCLUDE_DIR cmocka.h)
if(WIN32)
  # A static CMocka spares the tests a cmocka.dll that wine would have to find.
  find_library(SHK_CMOCKA_LIBRARY NAMES cmocka-static libcmocka-static cmocka libcmocka)
else()
  find_library(SHK_CMOCKA_LIBRARY NAMES cmocka libcmocka cmocka-static libcmocka-static)
endif()
if(NOT SHK_CMOCKA_INCLUDE_DIR OR NOT SHK_CMOCKA_LIBRARY)
  message(FATAL_ERROR "CMocka not found (install libcmocka-dev, or set CMAKE_PREFIX_PATH / "
                      "CMAKE_FIND_ROOT_PATH to its prefix); or configure with -DSHK_BUILD_TESTS=OFF")
endif()
add_library(shk::cmocka UNKNOWN IMPORTED)
set_target_properties(shk::cmocka PROPERTIES
  IMPORTED_LOCATION ${SHK_CMOCKA_LIBRARY}
  INTERFACE_INCLUDE_DIRECTORIES ${SHK_CMOCKA_INCLUDE_DIR})
message(STATUS "CMocka: ${SHK_CMOCKA_LIBRARY}")
