#!/usr/bin/env python3
"""Regenerates tests/models/chat_template_parity/reference.json: the real chat templates in
templates/ rendered by Python's jinja2 the way transformers' apply_chat_template renders them
(ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, loopcontrols, transformers' tojson,
raise_exception and strftime_now), for conversations covering system / user / assistant turns,
multi-turn, tool calls and tool results, add_generation_prompt on and off, and Qwen3's <think>
handling with enable_thinking. keel's interpreter must reproduce every string exactly
(tests/models/chat_template_parity_test.cpp), so that test needs no Python.

Usage (Debian: apt-get install python3-jinja2):
  python3 tests/models/chat_template_parity/gen_reference.py > tests/models/chat_template_parity/reference.json

The templates, verbatim (see README.md for sources and licences):
  qwen2.5.jinja       Qwen/Qwen2.5-7B-Instruct tokenizer_config.json chat_template
  qwen3.jinja         Qwen/Qwen3-0.6B
  llama3.1.jinja      meta-llama/Llama-3.1-8B-Instruct
  llama3.2.jinja      meta-llama/Llama-3.2-3B-Instruct
  mistral_nemo.jinja  mistralai/Mistral-Nemo-Instruct-2407
  mistral_v1.jinja    mistralai/Mistral-7B-Instruct-v0.2 ("v1" template with a system prompt; keel's
                      built-in `mistral` template)
"""
import json
import os
import sys
from datetime import datetime

import jinja2
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

HERE = os.path.dirname(os.path.abspath(__file__))


# ---- transformers' environment (transformers/utils/chat_template_utils.py) ----------------------
def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def strftime_now(fmt):
    return datetime.now().strftime(fmt)


ENV = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
ENV.filters["tojson"] = tojson
ENV.globals["raise_exception"] = raise_exception
ENV.globals["strftime_now"] = strftime_now

TOKENS = {
    "qwen2.5": {"eos_token": "<|im_end|>"},
    "qwen3": {"eos_token": "<|im_end|>"},
    "llama3.1": {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"},
    "llama3.2": {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"},
    "mistral_nemo": {"bos_token": "<s>", "eos_token": "</s>"},
    "mistral_v1": {"bos_token": "<s>", "eos_token": "</s>"},
}

# ---- conversations ------------------------------------------------------------------------------
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "the city"}, "unit": {"type": "string", "enum": ["c", "f"]}},
            "required": ["city"],
        },
    },
}
CALC_TOOL = {
    "type": "function",
    "function": {
        "name": "calc",
        "description": "Evaluates an arithmetic expression",
        "parameters": {"type": "object", "properties": {"expression": {"type": "string"}}, "required": ["expression"]},
    },
}


def u(c):
    return {"role": "user", "content": c}


def a(c):
    return {"role": "assistant", "content": c}


def s(c):
    return {"role": "system", "content": c}


def call(name, args, id_="call12345"):
    return {"id": id_, "type": "function", "function": {"name": name, "arguments": args}}


BASIC = [
    ("user_only", [u("What is 2+2?")], {}),
    ("system_user", [s("You are terse."), u("What is 2+2?")], {}),
    ("multi_turn", [s("You are terse."), u("2+2?"), a("4"), u("3+3?"), a("6"), u("And 4+4?")], {}),
    ("no_system_multi_turn", [u("Hello"), a("Hi there"), u("Who are you?")], {}),
    ("whitespace_unicode", [s("  Be brief.\n"), u("  Ça va? 日本語 🙂\n\n"), a(" Très bien.  "), u("\ttabs\tand \"quotes\" 'single'")], {}),
    ("empty_content", [u(""), a(""), u("x")], {}),
]

TOOLS = [
    ("tool_call_roundtrip",
     [s("You can use tools."), u("Weather in Paris?"),
      {"role": "assistant", "content": "", "tool_calls": [call("get_weather", {"city": "Paris", "unit": "c"})]},
      {"role": "tool", "content": "{\"temp\": 21, \"sky\": \"clear\"}", "tool_call_id": "call12345"},
      ],
     {"tools": [WEATHER_TOOL, CALC_TOOL]}),
    ("tool_call_no_system",
     [u("What is 12*7?"),
      {"role": "assistant", "content": "", "tool_calls": [call("calc", {"expression": "12*7"}, "abcdefghi")]},
      {"role": "tool", "content": "84", "tool_call_id": "abcdefghi"},
      a("12*7 = 84."), u("Thanks! And 3.5*2?")],
     {"tools": [CALC_TOOL]}),
]

QWEN_EXTRA = [
    ("parallel_tool_calls_text",
     [u("Weather in Paris and Rome?"),
      {"role": "assistant", "content": "Let me check.",
       "tool_calls": [call("get_weather", {"city": "Paris"}), call("get_weather", "{\"city\": \"Rome\"}")]},
      {"role": "tool", "content": "sunny"}, {"role": "tool", "content": "rainy"}],
     {"tools": [WEATHER_TOOL]}),
    ("tool_result_observation", [u("Compute 3*4"), a("<tool_call>\n{\"name\": \"calc\", \"arguments\": {\"expression\": \"3*4\"}}\n</tool_call>"),
                                 {"role": "tool", "content": "12"}], {}),
]

QWEN3_THINKING = [
    ("think_history",
     [u("2+2?"), a("<think>\nEasy: add.\n</think>\n\n4"), u("3+3?"), a("<think>\nAdd again.\n</think>\n\n6")], {}),
    ("think_last_turn_reasoning_content",
     [u("2+2?"), {"role": "assistant", "content": "4", "reasoning_content": "two and two"}], {}),
    ("think_after_tool",
     [u("Weather?"),
      {"role": "assistant", "content": "<think>\nNeed the tool.\n</think>\n\n", "tool_calls": [call("get_weather", {"city": "Oslo"})]},
      {"role": "tool", "content": "cold"}],
     {"tools": [WEATHER_TOOL]}),
    ("enable_thinking_false", [u("2+2?")], {"enable_thinking": False}),
    ("enable_thinking_true", [u("2+2?")], {"enable_thinking": True}),
]

LLAMA_EXTRA = [
    ("tools_in_system", [s("Use tools."), u("Weather in Paris?")], {"tools": [WEATHER_TOOL], "tools_in_user_message": False}),
    ("tool_result_observation", [u("Compute 3*4"), a("{\"name\": \"calc\", \"parameters\": {\"expression\": \"3*4\"}}"),
                                 {"role": "tool", "content": "12"}], {}),
]
LLAMA31_EXTRA = [
    ("builtin_tools",
     [u("Search the weather"),
      {"role": "assistant", "content": "", "tool_calls": [call("brave_search", {"query": "weather"})]},
      {"role": "ipython", "content": "sunny"}],
     {"builtin_tools": ["brave_search", "code_interpreter", "wolfram_alpha"]}),
]

ERRORS = {
    "mistral_v1": [("error_tool_role", [u("x"), a("y"), {"role": "tool", "content": "z"}], {}),
                   ("error_not_alternating", [u("x"), u("y")], {})],
    "mistral_nemo": [("error_bad_tool_call_id",
                      [u("x"), {"role": "assistant", "content": "", "tool_calls": [call("calc", {"expression": "1"}, "short")]}],
                      {"tools": [CALC_TOOL]})],
    "llama3.1": [("error_two_tool_calls",
                  [u("x"), {"role": "assistant", "content": "", "tool_calls": [call("calc", {}), call("calc", {})]}], {})],
}


def cases_for(name):
    out = list(BASIC)
    if name in ("mistral_nemo", "mistral_v1"):
        if name == "mistral_nemo":
            out += [c for c in TOOLS if c[0] == "tool_call_no_system"]
        return out
    out += TOOLS
    if name.startswith("qwen"):
        out += QWEN_EXTRA
    if name == "qwen3":
        out += QWEN3_THINKING
    if name.startswith("llama"):
        out += LLAMA_EXTRA
        out = [(n, m, dict(k, date_string="26 Jul 2024")) for n, m, k in out]
    if name == "llama3.1":
        out += [(n, m, dict(k, date_string="26 Jul 2024")) for n, m, k in LLAMA31_EXTRA]
    return out


def render(tmpl, messages, gen, extra, tokens):
    # apply_chat_template passes tools (None when absent), documents and the special tokens.
    ctx = {"messages": messages, "tools": None, "documents": None, "add_generation_prompt": gen}
    ctx.update(tokens)
    ctx.update(extra)
    return ctx, tmpl.render(**ctx)


def main():
    out = {"generator": "tests/models/chat_template_parity/gen_reference.py", "jinja2": jinja2.__version__, "cases": []}
    for name in sorted(TOKENS):
        with open(os.path.join(HERE, "templates", name + ".jinja"), encoding="utf-8") as f:
            tmpl = ENV.from_string(f.read())
        for case, messages, extra in cases_for(name):
            for gen in (True, False):
                ctx, text = render(tmpl, messages, gen, extra, TOKENS[name])
                out["cases"].append({"template": name, "case": case, "context": ctx, "expected": text})
        for case, messages, extra in ERRORS.get(name, []):
            ctx = {"messages": messages, "tools": None, "documents": None, "add_generation_prompt": True}
            ctx.update(TOKENS[name])
            ctx.update(extra)
            try:
                tmpl.render(**ctx)
                raise SystemExit(f"{name}/{case}: expected the template to raise")
            except jinja2.exceptions.TemplateError as e:
                out["cases"].append({"template": name, "case": case, "context": ctx, "error": str(e)})
    json.dump(out, sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
