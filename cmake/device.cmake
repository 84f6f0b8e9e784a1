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
  # The static runtime: libshmkit needs no libcudart.so at run time, and the runtime itself loads
  # the driver (libcuda) only when a device call is made, so machines without CUDA still load it.
  list(APPEND SHK_PLATFORM_LIBRARIES CUDA::cudart_static)
  message(STATUS "Device mapping: CUDA ${CUDAToolkit_VERSION}")
else()
  list(APPEND SHK_SOURCES ${PROJECT_SOURCE_DIR}/src/device/none.c)
  message(STATUS "Device mapping: none")
endif()
