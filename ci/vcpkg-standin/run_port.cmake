# Runs ports/<PORT>/portfile.cmake with the stand-in helpers, as vcpkg would for one triplet.
# cmake -DPORT=shmkit -DPORT_DIR=... -DCURRENT_PACKAGES_DIR=... -DCURRENT_BUILDTREES_DIR=...
#       -DVCPKG_LIBRARY_LINKAGE=static|dynamic [-DVCPKG_CHAINLOAD_TOOLCHAIN_FILE=...] [-DFEATURES=a;b]
#       -P run_port.cmake
cmake_minimum_required(VERSION 3.20) # script mode: today's policies (IN_LIST, ...)
foreach(var PORT PORT_DIR CURRENT_PACKAGES_DIR CURRENT_BUILDTREES_DIR VCPKG_LIBRARY_LINKAGE)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "${var} is required")
  endif()
endforeach()
if(NOT DEFINED FEATURES)
  set(FEATURES core)
endif()
include(${CMAKE_CURRENT_LIST_DIR}/vcpkg_functions.cmake)
file(REMOVE_RECURSE "${CURRENT_PACKAGES_DIR}" "${CURRENT_BUILDTREES_DIR}")
include("${PORT_DIR}/portfile.cmake")
message(STATUS "port ${PORT} (${VCPKG_LIBRARY_LINKAGE}) installed into ${CURRENT_PACKAGES_DIR}")
