// keel's Jinja interpreter: renders the chat templates HF models ship in tokenizer_config.json
// (the subset of Jinja2 they use: {{ }}, {% if / for / set / break / continue / raw %}, whitespace
// control, namespace(), filters, tests, str / list / dict methods, slicing, raise_exception,
// strftime_now). It renders as transformers' apply_chat_template does: trim_blocks and
// lstrip_blocks on, its tojson, undefined values printing as "". A template using anything
// outside the subset (a macro, an unknown filter or test) fails to parse, naming its line.
// Deliberately not here: chat messages and special tokens (models/chat_template.h builds the
// variables), autoescaping, macros, template inheritance, sandbox attribute rules.
#pragma once

#include <memory>
#include <string>

#include <nlohmann/json_fwd.hpp>

namespace keel::models::jinja {

struct Program;

class Template {
 public:
  /// Parses `source`; `origin` names it in errors ("<dir>/tokenizer_config.json"). Throws
  /// keel::Error "<origin>:<line>: <what>" for a syntax error or an unsupported construct.
  static Template parse(const std::string& source, const std::string& origin);

  /// Renders with the variables of `context` (a JSON object: messages, tools, bos_token ...).
  /// Throws keel::Error "<origin>:<line>: <what>" when rendering fails (raise_exception, a type
  /// error, an attribute of an undefined value).
  std::string render(const nlohmann::ordered_json& context) const;

  const std::string& origin() const { return origin_; }

 private:
  std::shared_ptr<const Program> program_;
  std::string origin_;
};

}  // namespace keel::models::jinja
