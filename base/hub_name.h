// Hugging Face hub names ("Qwen/Qwen2.5-0.5B-Instruct") given where keel wants a local model
// directory. keel never downloads or resolves hub names; these helpers only recognise one so that
// the error says so, instead of blaming the tokenizer or config.json it could not find.
#pragma once

#include <string>

namespace keel {

/// Whether `path` does not exist and reads as a hub name: exactly "org/name" (letters, digits,
/// '.', '_', '-'; no leading '/', '.' or '~') whose "org" is not a local directory either.
bool looks_like_hub_name(const std::string& path);

/// The message for such a path: hub names are not resolved, give a local HF directory (with the
/// command that downloads one and how to pass it: `what` is "model.path:" or "keel generate").
std::string hub_name_message(const std::string& path, const std::string& what);

}  // namespace keel
