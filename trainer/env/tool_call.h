// Tool calls in the formats of the model families' chat templates, parsed out of an assistant
// turn and written for expert actions:
//   qwen   (Qwen2.5 / Qwen3, Hermes style; also what keel's tiny plain-template models use):
//          <tool_call>\n{"name": "calc", "arguments": {"expression": "3*4"}}\n</tool_call>
//          (several blocks = several calls, in order)
//   llama3 (Llama-3.1 JSON tool calling): the turn is one JSON object
//          {"name": "calc", "parameters": {"expression": "3*4"}}, optionally after <|python_tag|>.
// Deliberately not here: running the tools (the environments) and rendering their results
// (models::render_observation).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace keel::env {

enum class ToolFormat { kQwen, kLlama3 };

/// The tool-call format of a chat template: llama3 -> kLlama3, chatml and plain -> kQwen.
ToolFormat tool_format_for(std::string_view chat_template);
/// "qwen" | "llama3".
const char* tool_format_name(ToolFormat f);

struct ToolCall {
  std::string name;
  std::string arguments;  ///< the arguments object as JSON text ("{}" when absent)
};

struct ParsedTurn {
  std::vector<ToolCall> calls;  ///< the well-formed calls, in order
  /// Why a call the turn attempts is malformed ("" = none): an unclosed <tool_call>, text that is
  /// not a JSON object, no string "name", arguments that are not an object. A turn with one bad
  /// call has no calls.
  std::string error;
  std::string text;  ///< the turn without its tool-call blocks, trimmed (the answer, when no call)
  bool attempted() const { return !calls.empty() || !error.empty(); }
};

/// Parses one assistant turn. qwen: every <tool_call>...</tool_call> block; llama3: the whole turn
/// (after an optional <|python_tag|>) when it starts with '{'. Never throws.
ParsedTurn parse_tool_calls(std::string_view turn, ToolFormat f);

/// The text an assistant writes to make `call` in format `f` (expert actions, tests).
std::string format_tool_call(const ToolCall& call, ToolFormat f);

}  // namespace keel::env
