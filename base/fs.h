// Small file helpers with keel's error and durability rules: reads name the file in errors, and
// writes are atomic (temporary file in the same directory, fsync, rename, fsync of the directory),
// so a kill at any moment leaves either the old file or the new one, never a torn one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <system_error>

namespace keel::fs {

/// Whole file as bytes; a missing/unreadable file throws keel::Error naming it and `what`.
std::string read_file(const std::filesystem::path& p, std::string_view what = "file");

/// Atomically replaces `p` with `contents` (creating parent directories).
void write_file_atomic(const std::filesystem::path& p, std::string_view contents);

/// Atomically replaces `p` with what `fill(fd, tmp_path)` writes into a fresh temporary file next
/// to it (for large outputs streamed piecewise, e.g. safetensors); use write_all() inside.
void write_atomic_with(const std::filesystem::path& p, const std::function<void(int fd, const std::string& tmp)>& fill);

/// Writes all of [data, data + n) to `fd` (retrying short writes); errors name `what`.
void write_all(int fd, const void* data, size_t n, const std::string& what);

/// fsync a file or directory by path (errors throw keel::Error naming it).
void fsync_path(const std::filesystem::path& p);

/// Removes `p` and everything below it without following symbolic links, like
/// std::filesystem::remove_all; the number of entries removed (0 when `p` does not exist). keel
/// never calls std::filesystem::remove_all: the pip LibTorch's libtorch.so (2.11+cu130) exports a
/// copy of it that the dynamic linker binds keel's calls to, and that copy crashes (a jump to
/// address 0, seen on the H100 machine). This one is nftw(3) + remove(3).
/// The error_code form never throws; the other throws keel::Error naming the entry that failed.
std::uintmax_t remove_tree(const std::filesystem::path& p, std::error_code& ec) noexcept;
std::uintmax_t remove_tree(const std::filesystem::path& p);

/// Writes directory `dir` whole: fill(tmp) writes its files into a fresh hidden sibling, which then
/// takes dir's place (an old dir is moved aside first and removed after), so a crash leaves the old
/// or the new directory, never a half-written one. A failure removes the temp and rethrows;
/// filesystem errors become keel::Error naming `dir` and `what`.
void write_dir_atomic(const std::filesystem::path& dir, const std::function<void(const std::filesystem::path& tmp)>& fill,
                      std::string_view what);

/// Atomically renames directory `from` to `to` (which must not exist) and fsyncs the parent.
void rename_dir_atomic(const std::filesystem::path& from, const std::filesystem::path& to);

}  // namespace keel::fs
