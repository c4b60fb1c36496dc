// Shared precompiled header: stable external headers only (never a project header).
// Built once by keel_pch and reused by every LibTorch target (REUSE_FROM).
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <fmt/core.h>
#include <fmt/format.h>
#include <torch/torch.h>
