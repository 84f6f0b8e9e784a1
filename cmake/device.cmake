# The device backend of buffers: src/device/cuda.c when the CUDA toolkit is found (option
# SHK_WITH_CUDA, on by default then), src/device/none.c otherwise (every device call: SHK_ENODEV).
# Cross builds (mingw) never look for CUDA: the toolkit found would be the host's.
set(SHK_CUDA_DEFAULT OFF)
if(NOT CMAKE_CROSSCOMPILING)
  find_package(CUDAToolkit QUIET)
  if(CUDAToolkit_FOUND)
    set(SHK_CUDA_DEFAULT ON)
  endif()
endif()
option(SHK_WITH_CUDA "Map buffers to CUDA devices (needs the CUDA toolkit)" ${SHK_CUDA_DEFAULT})

if(SHK_WITH_CUDA)
  if(NOT CUDAToolkit_FOUND)
    find_package(CUDAToolkit REQUIRED)
  endif()
  list(APPEND SHK_SOURCES ${PROJECT_SOURCE_DIR}/src/device/cuda.c)
  # Only the toolkit's cuda.h: the backend loads the driver (libcuda.so.1, nvcuda.dll) when a
  # device call first needs it, so nothing CUDA is linked and consumers inherit no dependency.
  # (The static runtime, linked before, brought a 4 KiB-aligned static TLS block that made
  # libshmkit.so fail to dlopen: "cannot allocate memory in static TLS block".)
  set(SHK_DEVICE_INCLUDE_DIRS ${CUDAToolkit_INCLUDE_DIRS})
  message(STATUS "Device mapping: CUDA ${CUDAToolkit_VERSION}")
else()
  list(APPEND SHK_SOURCES ${PROJECT_SOURCE_DIR}/src/device/none.c)
  message(STATUS "Device mapping: none")
endif()

# shmkit_device_includes(<target>): the toolkit headers for the backend's one source file in
# <target> (a source property is seen by the targets of one directory, hence TARGET_DIRECTORY).
function(shmkit_device_includes target)
  if(SHK_WITH_CUDA)
    set_property(SOURCE ${PROJECT_SOURCE_DIR}/src/device/cuda.c TARGET_DIRECTORY ${target}
      APPEND PROPERTY INCLUDE_DIRECTORIES ${SHK_DEVICE_INCLUDE_DIRS})
  endif()
endfunction()
