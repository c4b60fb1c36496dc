// Recognising Hugging Face hub names (see hub_name.h).
#include "base/hub_name.h"

#include <cctype>
#include <filesystem>

#include <fmt/format.h>

namespace keel {

namespace {

/// One hub name component: starts with a letter or digit, then letters, digits, '.', '_', '-'.
bool hub_component(const std::string& s) {
  if (s.empty() || !std::isalnum(static_cast<unsigned char>(s[0]))) return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')) return false;
  return true;
}

}  // namespace

bool looks_like_hub_name(const std::string& path) {
  const auto slash = path.find('/');
  if (slash == std::string::npos || path.find('/', slash + 1) != std::string::npos) return false;
  const std::string org = path.substr(0, slash);
  if (!hub_component(org) || !hub_component(path.substr(slash + 1))) return false;
  std::error_code ec;
  // An existing path, or an existing parent directory, means a local path was meant.
  return !std::filesystem::exists(path, ec) && !std::filesystem::exists(org, ec);
}

std::string hub_name_message(const std::string& path, const std::string& what) {
  const std::string name = path.substr(path.find('/') + 1);
  return fmt::format("'{}' is not a local directory and looks like a Hugging Face hub name: keel does not download or "
                     "resolve hub names; give a local HF model directory (config.json, *.safetensors, tokenizer.json), "
                     "e.g. `huggingface-cli download {} --local-dir models/{}`, then {} models/{}",
                     path, path, name, what, name);
}

}  // namespace keel
