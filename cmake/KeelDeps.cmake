# System dependencies (Debian packages on CPU machines; a CUDA LibTorch via CMAKE_PREFIX_PATH on GPU
# machines, with the other libraries from the bundle made by scripts/bundle_gpu_deps.sh).

# CUDA LibTorch (pip wheels): Caffe2's cuda.cmake looks for the NVTX3 headers only in its own source
# tree and otherwise links CUDA::nvToolsExt, which CUDA >= 12.9 toolkits no longer ship (configure
# then fails). Point it at the toolkit's header-only nvtx3 first. Nothing happens on CPU machines.
find_package(CUDAToolkit QUIET)
if(CUDAToolkit_FOUND AND NOT nvtx3_dir)
  find_path(nvtx3_dir NAMES nvtx3 PATHS ${CUDAToolkit_INCLUDE_DIRS} NO_DEFAULT_PATH)
endif()
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
# A pip LibTorch ships fmt headers of its own (fmt 12 in torch 2.15) in torch/include. That
# directory is on the include path; the system's fmt, the one keel links (libfmt), sits in an implicit
# directory searched last. So torch's headers would win, and every fmt::format call would then miss
# at link time (fmt::v12::vformat). A directory holding only a link to the linked fmt's headers goes
# first. LibTorch's own headers compile against fmt 9 (as on the GPU machines, where the bundle's fmt
# had an explicit include directory). Nothing changes where both are the same (Debian's LibTorch).
get_target_property(_keel_fmt_inc fmt::fmt INTERFACE_INCLUDE_DIRECTORIES)
list(GET _keel_fmt_inc 0 _keel_fmt_inc)
get_filename_component(_keel_fmt_inc "${_keel_fmt_inc}" REALPATH)
get_filename_component(_keel_torch_inc "${TORCH_INSTALL_PREFIX}/include" REALPATH)
if(EXISTS "${_keel_torch_inc}/fmt" AND EXISTS "${_keel_fmt_inc}/fmt" AND NOT _keel_torch_inc STREQUAL _keel_fmt_inc)
  set(_keel_fmt_first "${CMAKE_BINARY_DIR}/fmt-first")
  file(MAKE_DIRECTORY "${_keel_fmt_first}")
  file(CREATE_LINK "${_keel_fmt_inc}/fmt" "${_keel_fmt_first}/fmt" SYMBOLIC)
  target_include_directories(keel_torch SYSTEM BEFORE INTERFACE "${_keel_fmt_first}")
  message(STATUS "keel: LibTorch's bundled fmt headers set aside for ${_keel_fmt_inc}/fmt")
endif()
find_package(spdlog REQUIRED)
find_package(nlohmann_json REQUIRED)
find_package(CLI11 REQUIRED)
# Protobuf (Debian's libprotobuf-dev + protobuf-compiler) for TensorBoard's Event messages, generated
# from trainer/metrics/tensorboard_event.proto at build time. It is the libprotobuf.so that Debian's
# LibTorch already links, so the process holds one protobuf; a pip LibTorch keeps its own hidden.
find_package(Protobuf REQUIRED)

# SentencePiece: headers only, never linked. Debian's libsentencepiece.so.0 exports its private copy
# of protobuf-lite, which clashes with LibTorch's libprotobuf.so.32 in one process (a crash in
# protobuf's static initialisers at startup, or a failed CHECK on first use, depending on which is
# searched first). models/tokenizer_sentencepiece.cpp therefore dlopen()s it on first use with
# RTLD_LOCAL | RTLD_DEEPBIND, so it binds to its own protobuf and nothing else sees it.
find_package(PkgConfig QUIET)
if(PkgConfig_FOUND)
  pkg_check_modules(SENTENCEPIECE QUIET sentencepiece)
endif()
find_path(SENTENCEPIECE_INCLUDE_DIR sentencepiece_processor.h HINTS ${SENTENCEPIECE_INCLUDE_DIRS} REQUIRED)
add_library(sentencepiece INTERFACE)
target_include_directories(sentencepiece SYSTEM INTERFACE ${SENTENCEPIECE_INCLUDE_DIR})
target_link_libraries(sentencepiece INTERFACE ${CMAKE_DL_LIBS})

# yaml-cpp 0.7's Debian package exports the target without a namespace; later ones add yaml-cpp::yaml-cpp.
if(NOT TARGET yaml-cpp AND TARGET yaml-cpp::yaml-cpp)
  add_library(yaml-cpp ALIAS yaml-cpp::yaml-cpp)
endif()
