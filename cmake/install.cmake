# Installation: headers, library, CMake package (shmkit::shmkit) and pkg-config file.
set(SHK_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/shmkit)

install(TARGETS shmkit EXPORT shmkitTargets
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(DIRECTORY include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
  PATTERN mpi.h EXCLUDE)
if(SHK_WITH_MPI)
  install(FILES include/shmkit/mpi.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/shmkit)
endif()
install(FILES ${PROJECT_BINARY_DIR}/include/shmkit/config.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/shmkit)

install(EXPORT shmkitTargets NAMESPACE shmkit:: DESTINATION ${SHK_CMAKE_DIR})
configure_package_config_file(cmake/shmkitConfig.cmake.in
  ${PROJECT_BINARY_DIR}/shmkitConfig.cmake INSTALL_DESTINATION ${SHK_CMAKE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/shmkitConfigVersion.cmake
  COMPATIBILITY SameMajorVersion)
install(FILES ${PROJECT_BINARY_DIR}/shmkitConfig.cmake
  ${PROJECT_BINARY_DIR}/shmkitConfigVersion.cmake DESTINATION ${SHK_CMAKE_DIR})

# pkg-config: a static build must also name the system libraries it needs.
set(SHK_PC_LIBS_PRIVATE "")
if(WIN32)
  set(SHK_PC_LIBS_PRIVATE "-ladvapi32 -ldbghelp -lpsapi")
else()
  set(SHK_PC_LIBS_PRIVATE "-pthread")
  if(SHK_HAVE_LIBRT)
    string(APPEND SHK_PC_LIBS_PRIVATE " -lrt")
  endif()
  if(CMAKE_DL_LIBS)
    string(APPEND SHK_PC_LIBS_PRIVATE " -l${CMAKE_DL_LIBS}")
  endif()
endif()
configure_file(cmake/shmkit.pc.in ${PROJECT_BINARY_DIR}/shmkit.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/shmkit.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
