# System dependencies (Debian packages on CPU machines; a CUDA LibTorch via CMAKE_PREFIX_PATH on GPU
# machines, with the other libraries from the bundle made by scripts/bundle_gpu_deps.sh).

find_package(Torch REQUIRED)
if(Torch_VERSION VERSION_LESS 1.13)
  message(FATAL_ERROR "keel needs LibTorch >= 1.13, found ${Torch_VERSION} in ${TORCH_INSTALL_PREFIX}")
endif()
message(STATUS "keel: LibTorch ${Torch_VERSION} at ${TORCH_INSTALL_PREFIX}")

# The CUDA path is switched on when the Torch that was found has it.
set(KEEL_WITH_CUDA OFF)
if(TARGET torch_cuda OR TORCH_CUDA_LIBRARIES OR CAFFE2_USE_CUDA)
  set(KEEL_WITH_CUDA ON)
endif()
message(STATUS "keel: CUDA support ${KEEL_WITH_CUDA}")

# c10d (ProcessGroupGloo / NCCL) lives in libtorch(_cpu); Debian's build keeps its headers.
add_library(keel_torch INTERFACE)
target_link_libraries(keel_torch INTERFACE ${TORCH_LIBRARIES})
target_include_directories(keel_torch SYSTEM INTERFACE ${TORCH_INCLUDE_DIRS})
# TORCH_CXX_FLAGS carries -D_GLIBCXX_USE_CXX11_ABI=... on pip builds; keep it on every torch target.
separate_arguments(_keel_torch_flags UNIX_COMMAND "${TORCH_CXX_FLAGS}")
target_compile_options(keel_torch INTERFACE ${_keel_torch_flags})
if(KEEL_WITH_CUDA)
  target_compile_definitions(keel_torch INTERFACE KEEL_WITH_CUDA=1)
endif()

find_package(yaml-cpp REQUIRED)
find_package(fmt REQUIRED)
find_package(spdlog REQUIRED)
find_package(nlohmann_json REQUIRED)
find_package(CLI11 REQUIRED)

# SentencePiece ships a pkg-config file but no CMake package.
find_package(PkgConfig QUIET)
if(PkgConfig_FOUND)
  pkg_check_modules(SENTENCEPIECE QUIET IMPORTED_TARGET sentencepiece)
endif()
if(TARGET PkgConfig::SENTENCEPIECE)
  add_library(sentencepiece ALIAS PkgConfig::SENTENCEPIECE)
else()
  # GPU machines: the bundled Debian packages (scripts/bundle_gpu_deps.sh), found through
  # CMAKE_PREFIX_PATH / CMAKE_LIBRARY_PATH.
  find_path(SENTENCEPIECE_INCLUDE_DIR sentencepiece_processor.h REQUIRED)
  find_library(SENTENCEPIECE_LIBRARY sentencepiece REQUIRED)
  find_library(SENTENCEPIECE_TRAIN_LIBRARY sentencepiece_train REQUIRED)
  add_library(sentencepiece INTERFACE)
  target_link_libraries(sentencepiece INTERFACE ${SENTENCEPIECE_LIBRARY} ${SENTENCEPIECE_TRAIN_LIBRARY})
  target_include_directories(sentencepiece INTERFACE ${SENTENCEPIECE_INCLUDE_DIR})
endif()

# yaml-cpp 0.7's Debian package exports the target without a namespace; later ones add yaml-cpp::yaml-cpp.
if(NOT TARGET yaml-cpp AND TARGET yaml-cpp::yaml-cpp)
  add_library(yaml-cpp ALIAS yaml-cpp::yaml-cpp)
endif()
