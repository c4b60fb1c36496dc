#!/usr/bin/env python3
"""A keel subprocess environment (protocol: docs/environments.md): a counting game.
The counter starts at 0; the agent says "up" to add one and "stop" once it equals the target
(record meta "target", else 1..5 from the seed). Reward 1 for stopping on the target; stopping
early or counting past it ends the episode with 0. Standard library only; not part of keel.
  env: {name: subprocess, params: {command: [python3, examples/envs/count_env.py]}}"""
import json
import sys

games = {}  # episode id -> [count, target]


def handle(req):
    op, ep = req["op"], req.get("episode")
    if op == "hello":
        return {"info_keys": ["success", "invalid_action"]}
    if op == "reset":
        target = int(req["record"]["meta"].get("target", req["seed"] % 5 + 1))
        games[ep] = [0, target]
        return {"observation": f"target {target}. count 0"}
    if op == "close":
        games.pop(ep, None)
        return {"ok": True}
    g = games[ep]
    if op == "expert":
        return {"action": "up" if g[0] < g[1] else "stop"}
    word = req["action"].strip().lower()
    if word not in ("up", "stop"):
        return {"observation": "say up or stop", "reward": 0.0, "done": False,
                "info": {"success": 0, "invalid_action": 1}}
    g[0] += word == "up"
    win = word == "stop" and g[0] == g[1]
    done = word == "stop" or g[0] > g[1]
    return {"observation": f"count {g[0]}", "reward": float(win), "done": done,
            "info": {"success": int(win), "invalid_action": 0}}


for line in sys.stdin:  # one request per line; answer each with one line, flushed
    try:
        reply = handle(json.loads(line))
    except Exception as e:  # an {"error": ...} answer fails this episode only
        reply = {"error": f"{type(e).__name__}: {e}"}
    print(json.dumps(reply), flush=True)
