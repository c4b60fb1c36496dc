// Rational — an exact fraction of two 128-bit integers, always reduced with a positive
// denominator, for verifiers that must compare numbers exactly (Countdown, math answers).
// Every operation reports overflow instead of wrapping; division by zero is reported too.
// Not a bignum: values beyond ~1.7e38 are "unrepresentable" and the caller decides what that means.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace keel::rewards {

class Rational {
 public:
  using Int = __int128;

  Rational() = default;
  /// num/den reduced; nullopt when den == 0.
  static std::optional<Rational> make(Int num, Int den = 1);

  Int num() const { return num_; }
  Int den() const { return den_; }
  bool is_integer() const { return den_ == 1; }

  // nullopt on overflow (and, for div, on division by zero).
  std::optional<Rational> add(const Rational& o) const;
  std::optional<Rational> sub(const Rational& o) const;
  std::optional<Rational> mul(const Rational& o) const;
  std::optional<Rational> div(const Rational& o) const;
  std::optional<Rational> neg() const;

  bool operator==(const Rational& o) const { return num_ == o.num_ && den_ == o.den_; }
  bool operator!=(const Rational& o) const { return !(*this == o); }
  /// "-3/4", "5" (for messages and tests).
  std::string str() const;
  double to_double() const { return static_cast<double>(num_) / static_cast<double>(den_); }

  /// Parses "[+-]digits[.digits][/digits]" (no spaces, no thousands separators); nullopt otherwise
  /// or on overflow. "0.125" -> 1/8; "6/4" -> 3/2; "7/0" -> nullopt.
  static std::optional<Rational> parse(const std::string& s);

 private:
  Int num_ = 0;
  Int den_ = 1;
};

}  // namespace keel::rewards
