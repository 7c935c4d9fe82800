// The values a number given as input may take (a config key, a command-line option, a metadata
// field): an interval whose ends are each closed, open or absent. NaN and the infinities lie in
// none, so that a range check is also a finiteness check.
#pragma once
#include <limits>
#include <string>

namespace gannet {

struct NumberRange {
  double lo = -std::numeric_limits<double>::infinity();
  double hi = std::numeric_limits<double>::infinity();
  bool lo_open = false, hi_open = false;

  static NumberRange any() { return {}; }                                  // every finite number
  static NumberRange at_least(double lo) { return {lo, inf(), false, false}; }  // [lo, inf)
  static NumberRange above(double lo) { return {lo, inf(), true, false}; }      // (lo, inf)
  static NumberRange closed(double lo, double hi) { return {lo, hi, false, false}; }     // [lo, hi]
  static NumberRange half_open(double lo, double hi) { return {lo, hi, false, true}; }   // [lo, hi)
  static NumberRange left_open(double lo, double hi) { return {lo, hi, true, false}; }   // (lo, hi]

  bool contains(double v) const;
  // What an error says the value must be: "> 0", ">= 0", "in [0, 1)", "finite".
  std::string describe() const;
  // The interval as written in --help: "[0, inf)", "(0, 1]".
  std::string interval() const;

 private:
  static double inf() { return std::numeric_limits<double>::infinity(); }
};

// The shortest decimal text that reads back as v: 2147483647, 1e-08, 0.1.
std::string format_number(double v);

// "must be > 0, got -1": the message for a value outside `range`.
std::string out_of_range_message(const NumberRange& range, const std::string& got);

}  // namespace gannet
