// The records the data layer hands to the trainer: prompts (RL), preference pairs (DPO, RM) and
// supervised pairs (SFT). Plain structs; no tensors here (tokenization happens downstream).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace keel::data {

struct Message {
  std::string role;     ///< system | user | assistant | tool
  std::string content;
};

struct PromptRecord {
  std::string id;                           ///< "<file>:<line>" or "<task>/<split>/<index>"
  std::string prompt;                       ///< plain prompt text ("" when messages are given)
  std::vector<Message> messages;            ///< chat form (rendered by the chat template)
  std::string answer;                       ///< gold answer for verifiers ("" if none)
  std::map<std::string, std::string> meta;  ///< every other field, as JSON text ("\"x\"", "3", "[1,2]")
};

struct PreferenceRecord {
  std::string id;
  std::string prompt;
  std::vector<Message> messages;            ///< chat form of the prompt
  std::string chosen;
  std::string rejected;
  std::map<std::string, std::string> meta;  ///< every other field, as JSON text (e.g. a "margin")
};

struct SftRecord {
  std::string id;
  std::string prompt;
  std::vector<Message> messages;
  std::string response;
};

}  // namespace keel::data
