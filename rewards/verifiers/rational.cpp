// Rational implementation: reduced fractions with overflow-checked 128-bit arithmetic.
#include "rewards/verifiers/rational.h"

#include <algorithm>

namespace keel::rewards {

namespace {

using Int = Rational::Int;

Int abs128(Int x) { return x < 0 ? -x : x; }

Int gcd128(Int a, Int b) {
  a = abs128(a);
  b = abs128(b);
  while (b != 0) {
    const Int t = a % b;
    a = b;
    b = t;
  }
  return a;
}

// The most negative value cannot be negated; keep every value strictly inside ±(2^127 - 1).
constexpr Int kMax = ~(static_cast<Int>(1) << 127);
constexpr Int kMin = -kMax;

}  // namespace

std::optional<Rational> Rational::make(Int num, Int den) {
  if (den == 0) return std::nullopt;
  if (num < kMin || den < kMin) return std::nullopt;
  if (den < 0) {
    num = -num;
    den = -den;
  }
  const Int g = gcd128(num, den);
  Rational r;
  r.num_ = g == 0 ? 0 : num / g;
  r.den_ = g == 0 ? 1 : den / g;
  if (r.num_ == 0) r.den_ = 1;
  return r;
}

std::optional<Rational> Rational::add(const Rational& o) const {
  // a/b + c/d = (a·(d/g) + c·(b/g)) / (b/g·d) with g = gcd(b, d)
  const Int g = gcd128(den_, o.den_);
  Int x, y, n, d;
  if (__builtin_mul_overflow(num_, o.den_ / g, &x)) return std::nullopt;
  if (__builtin_mul_overflow(o.num_, den_ / g, &y)) return std::nullopt;
  if (__builtin_add_overflow(x, y, &n)) return std::nullopt;
  if (__builtin_mul_overflow(den_ / g, o.den_, &d)) return std::nullopt;
  return make(n, d);
}

std::optional<Rational> Rational::neg() const {
  if (num_ < kMin + 1) return std::nullopt;
  Rational r = *this;
  r.num_ = -num_;
  return r;
}

std::optional<Rational> Rational::sub(const Rational& o) const {
  auto n = o.neg();
  if (!n) return std::nullopt;
  return add(*n);
}

std::optional<Rational> Rational::mul(const Rational& o) const {
  // cross-reduce first to keep intermediates small
  const Int g1 = std::max<Int>(gcd128(num_, o.den_), 1);
  const Int g2 = std::max<Int>(gcd128(o.num_, den_), 1);
  Int n, d;
  if (__builtin_mul_overflow(num_ / g1, o.num_ / g2, &n)) return std::nullopt;
  if (__builtin_mul_overflow(den_ / g2, o.den_ / g1, &d)) return std::nullopt;
  return make(n, d);
}

std::optional<Rational> Rational::div(const Rational& o) const {
  if (o.num_ == 0) return std::nullopt;
  auto inv = make(o.den_, o.num_);
  if (!inv) return std::nullopt;
  return mul(*inv);
}

std::string Rational::str() const {
  auto to_s = [](Int v) {
    if (v == 0) return std::string("0");
    const bool neg = v < 0;
    std::string s;
    while (v != 0) {
      const int digit = static_cast<int>(v % 10);
      s.push_back(static_cast<char>('0' + (digit < 0 ? -digit : digit)));
      v /= 10;
    }
    if (neg) s.push_back('-');
    std::reverse(s.begin(), s.end());
    return s;
  };
  return den_ == 1 ? to_s(num_) : to_s(num_) + "/" + to_s(den_);
}

std::optional<Rational> Rational::parse(const std::string& s) {
  size_t i = 0;
  bool neg = false;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) neg = s[i++] == '-';
  auto digits = [&](Int& value, Int& scale, bool count_scale) -> bool {
    const size_t start = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      if (__builtin_mul_overflow(value, 10, &value)) return false;
      if (__builtin_add_overflow(value, static_cast<Int>(s[i] - '0'), &value)) return false;
      if (count_scale && __builtin_mul_overflow(scale, 10, &scale)) return false;
      ++i;
    }
    return i > start;
  };
  Int num = 0, scale = 1, unused = 1;
  const size_t int_start = i;
  const bool has_int = digits(num, unused, false);
  if (!has_int && i != int_start) return std::nullopt;  // overflow
  if (i < s.size() && s[i] == '.') {
    ++i;
    const size_t frac_start = i;
    if (!digits(num, scale, true)) {
      if (i != frac_start) return std::nullopt;  // overflow
      if (!has_int) return std::nullopt;       // "." alone
    }
  } else if (!has_int) {
    return std::nullopt;
  }
  Int den = scale;
  if (i < s.size() && s[i] == '/') {
    if (scale != 1) return std::nullopt;  // "1.5/2" is not a plain fraction
    ++i;
    Int d = 0;
    if (!digits(d, unused, false)) return std::nullopt;
    den = d;
  }
  if (i != s.size()) return std::nullopt;
  return make(neg ? -num : num, den);
}

}  // namespace keel::rewards
