# vcpkg overlay port of shmkit: builds this checkout (two folders up), one variant per triplet.
set(SOURCE_PATH "${CMAKE_CURRENT_LIST_DIR}/../..")

# MinGW triplets: the mingw-w64 toolchains most users have (Debian's and Ubuntu's gcc-mingw-w64,
# MSYS2's mingw64) build against msvcrt.dll, and vcpkg's post-build check refuses DLLs that import
# it ("DLLs that link with obsolete C RunTime (CRT) DLLs"). shmkit passes no CRT object (FILE*,
# malloc'd memory, errno) across its API (memory it allocates, it frees), so the DLL's CRT does
# not have to match the program's. A UCRT toolchain (MSYS2 ucrt64, llvm-mingw) gives a DLL that
# passes without this policy.
if(VCPKG_TARGET_IS_MINGW)
  set(VCPKG_POLICY_ALLOW_OBSOLETE_MSVCRT enabled)
endif()

vcpkg_check_features(OUT_FEATURE_OPTIONS FEATURE_OPTIONS
  FEATURES
    cuda  SHK_WITH_CUDA
    mpi   SHK_WITH_MPI
    tools SHK_BUILD_TOOLS
)

# vcpkg sets BUILD_SHARED_LIBS from the triplet's library linkage; shmkit records the choice in
# the installed shmkit/config.h, so MSBuild consumers with no compile definitions link right.
vcpkg_cmake_configure(
  SOURCE_PATH "${SOURCE_PATH}"
  OPTIONS
    ${FEATURE_OPTIONS}
    -DSHK_BUILD_TESTS=OFF
    -DSHK_BUILD_EXAMPLES=OFF
    -DSHK_BUILD_BENCH=OFF
)
vcpkg_cmake_install()
vcpkg_cmake_config_fixup(CONFIG_PATH lib/cmake/shmkit)
vcpkg_fixup_pkgconfig()

# The tool and the worker host go where vcpkg keeps programs: tools/shmkit/. The library looks
# for the worker host in ../tools/shmkit from its own folder (lib/ or bin/), so a shared build
# finds it with no setting; a program linked with the static library sets SHK_WORKER_HOST.
# Without the tools feature there is no worker host: hosted pools and calls give SHK_EUNSUPPORTED.
if("tools" IN_LIST FEATURES)
  vcpkg_copy_tools(TOOL_NAMES shmkit shmkit-worker AUTO_CLEAN)
endif()

file(REMOVE_RECURSE "${CURRENT_PACKAGES_DIR}/debug/include" "${CURRENT_PACKAGES_DIR}/debug/share")
if(VCPKG_LIBRARY_LINKAGE STREQUAL "static")
  file(REMOVE_RECURSE "${CURRENT_PACKAGES_DIR}/bin" "${CURRENT_PACKAGES_DIR}/debug/bin")
endif()

file(INSTALL "${CMAKE_CURRENT_LIST_DIR}/usage" DESTINATION "${CURRENT_PACKAGES_DIR}/share/${PORT}")
vcpkg_install_copyright(FILE_LIST "${SOURCE_PATH}/LICENSE")
