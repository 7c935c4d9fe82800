// NumberRange (the values an input number may take) and the strict text-to-number parsers.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "gannet/core/number_range.h"
#include "gannet/core/parse_number.h"
#include "test_files.h"

using namespace gannet;
using gannet::testing::message_of;

TEST(NumberRange, EndsOpenClosedOrAbsentAndNeverNaNOrInf) {
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  EXPECT_TRUE(NumberRange::above(0).contains(1e-30));
  EXPECT_FALSE(NumberRange::above(0).contains(0));
  EXPECT_TRUE(NumberRange::at_least(0).contains(0));
  EXPECT_FALSE(NumberRange::at_least(0).contains(-0.001));
  EXPECT_TRUE(NumberRange::half_open(0, 1).contains(0));
  EXPECT_FALSE(NumberRange::half_open(0, 1).contains(1));
  EXPECT_TRUE(NumberRange::left_open(0, 1).contains(1));
  EXPECT_FALSE(NumberRange::left_open(0, 1).contains(0));
  for (const NumberRange& r : {NumberRange::any(), NumberRange::at_least(0), NumberRange::closed(0, 1)}) {
    EXPECT_FALSE(r.contains(nan));
    EXPECT_FALSE(r.contains(inf));
    EXPECT_FALSE(r.contains(-inf));
  }
  EXPECT_EQ(NumberRange::above(0).describe(), "> 0");
  EXPECT_EQ(NumberRange::at_least(1e-8).describe(), ">= 1e-08");
  EXPECT_EQ(NumberRange::closed(0, 2147483647).describe(), "in [0, 2147483647]");
  EXPECT_EQ(NumberRange::half_open(0, 1).describe(), "in [0, 1)");
  EXPECT_EQ(NumberRange::any().describe(), "finite");
  EXPECT_EQ(NumberRange::at_least(0).interval(), "[0, inf)");
  EXPECT_EQ(NumberRange::left_open(0, 0.5).interval(), "(0, 0.5]");
  EXPECT_EQ(out_of_range_message(NumberRange::above(0), "-1"), "must be > 0, got -1");
}

TEST(ParseNumber, WholeTextInTheTypeOrAnErrorNamingTheField) {
  EXPECT_EQ(parse_int64("-42", "step"), -42);
  EXPECT_EQ(parse_uint64("18446744073709551615", "seed"), 18446744073709551615u);
  EXPECT_DOUBLE_EQ(parse_double("2.5e-3", "x"), 2.5e-3);
  EXPECT_EQ(message_of([] { parse_int64("12x", "step"); }), "step: expected an integer, got '12x'");
  EXPECT_EQ(message_of([] { parse_int64("", "step"); }), "step: expected an integer, got ''");
  EXPECT_EQ(message_of([] { parse_int64(" 1", "step"); }), "step: expected an integer, got ' 1'");
  EXPECT_EQ(message_of([] { parse_int64("9223372036854775808", "step"); }),
            "step: '9223372036854775808' is out of range for an integer");
  EXPECT_EQ(message_of([] { parse_uint64("-1", "seed"); }), "seed: expected a non-negative integer, got '-1'");
  EXPECT_EQ(message_of([] { parse_double("inf", "x"); }), "x: expected a finite number, got 'inf'");
  EXPECT_EQ(message_of([] { parse_double("1e999", "x"); }), "x: '1e999' is out of range for a number");
  // Quoted text is escaped: a NUL or a byte of invalid UTF-8 does not cut or garble the line.
  EXPECT_EQ(message_of([] { parse_int64(std::string("1\0\xff'", 4), "step"); }),
            "step: expected an integer, got '1\\x00\\xff\\x27'");
  EXPECT_EQ(quote_text(std::string(70, 'a')), "'" + std::string(64, 'a') + "...'");
}
