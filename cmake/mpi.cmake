# The optional MPI component: library shmkit_mpi (target shmkit::mpi, header shmkit/mpi.h),
# built when find_package(MPI COMPONENTS C) finds MPI. Not built for Windows yet: MS-MPI is
# not available to the cross build here, and src/mpi/ maps files with POSIX calls.
if(WIN32)
  set(SHK_MPI_DEFAULT OFF)
else()
  find_package(MPI QUIET COMPONENTS C)
  set(SHK_MPI_DEFAULT ${MPI_C_FOUND})
endif()
option(SHK_WITH_MPI "Build the MPI component shmkit::mpi (on when MPI is found)" ${SHK_MPI_DEFAULT})
set(SHK_WITH_MPI_VALUE 0)
if(SHK_WITH_MPI)
  if(WIN32)
    message(FATAL_ERROR "SHK_WITH_MPI: the MPI component is not ported to Windows yet")
  endif()
  find_package(MPI REQUIRED COMPONENTS C)
  set(SHK_WITH_MPI_VALUE 1)
  file(GLOB SHK_MPI_SOURCES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/mpi/*.c)
  # The chunk splitter is compiled in as well: the ranks split exactly as shk_task_run() does.
  add_library(shmkit_mpi ${SHK_MPI_SOURCES} ${PROJECT_SOURCE_DIR}/src/common/task_chunks.c)
  add_library(shmkit::mpi ALIAS shmkit_mpi)
  shmkit_setup_library(shmkit_mpi)
  target_link_libraries(shmkit_mpi PUBLIC shmkit MPI::MPI_C)
  set_target_properties(shmkit_mpi PROPERTIES
    VERSION ${PROJECT_VERSION}
    SOVERSION ${PROJECT_VERSION_MAJOR}
    EXPORT_NAME mpi)
  # What a test under mpiexec needs in its environment. Under AddressSanitizer: crashing chunks
  # die of their signal (as in tests/), and Open MPI's own allocations kept at exit are not
  # reported as leaks (tests/mpi/lsan-openmpi.supp says which; its components stay loaded and
  # stacks are unwound fully, so that they can be named). shmkit's allocations are still checked.
  set(SHK_MPI_TEST_ENVIRONMENT
    "OMPI_MCA_mca_base_component_disable_dlclose=1"
    "PMIX_MCA_mca_base_component_disable_dlclose=1"
    "ASAN_OPTIONS=handle_segv=0:handle_sigbus=0:detect_leaks=1:fast_unwind_on_malloc=0"
    "LSAN_OPTIONS=suppressions=${PROJECT_SOURCE_DIR}/tests/mpi/lsan-openmpi.supp:print_suppressions=0"
    "UBSAN_OPTIONS=print_stacktrace=1")
  install(TARGETS shmkit_mpi EXPORT shmkitTargets
    RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
    LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
    ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
endif()
