#include "yaml/yaml.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

namespace driftless::yaml {
namespace {

using value::Value;

struct Parsed {
  std::vector<YamlDocument> docs;
  Diagnostics diags;
};

Parsed Parse(std::string_view text) {
  Parsed p;
  p.docs = ParseYaml(text, "in.yaml", p.diags);
  return p;
}

/// Parses text that must hold exactly one document and no problems.
Value One(std::string_view text) {
  Parsed p = Parse(text);
  EXPECT_TRUE(p.diags.empty()) << text << "\n" << p.diags.ToString();
  EXPECT_EQ(p.docs.size(), 1u) << text;
  if (p.docs.empty()) return Value();
  return std::move(p.docs[0].root);
}

/// The value of "v" in the one-line document "v: <scalar>".
Value Scalar(const std::string& scalar) {
  Value doc = One("v: " + scalar + "\n");
  const Value* v = doc.Find("v");
  EXPECT_NE(v, nullptr) << scalar;
  return v == nullptr ? Value() : *v;
}

/// The single error of a failing parse, as "file:line:col: error: message".
std::string OnlyError(std::string_view text) {
  Parsed p = Parse(text);
  EXPECT_EQ(p.diags.ErrorCount(), 1u) << text << "\n" << p.diags.ToString();
  return p.diags.items().empty() ? "" : p.diags.items()[0].ToString();
}

TEST(YamlScalars, NullsAndBools) {
  for (const char* s : {"~", "null", "Null", "NULL", ""}) {
    EXPECT_TRUE(Scalar(s).is_null()) << s;
  }
  for (const char* s : {"true", "True", "TRUE"}) {
    Value v = Scalar(s);
    ASSERT_TRUE(v.is_bool()) << s;
    EXPECT_TRUE(v.as_bool());
  }
  for (const char* s : {"false", "False", "FALSE"}) {
    Value v = Scalar(s);
    ASSERT_TRUE(v.is_bool()) << s;
    EXPECT_FALSE(v.as_bool());
  }
  // YAML 1.1 spellings are plain strings in the 1.2 core schema.
  for (const char* s : {"yes", "no", "on", "off", "y", "tRUE", "nULL", "NULLS", "truex"}) {
    Value v = Scalar(s);
    ASSERT_TRUE(v.is_string()) << s;
    EXPECT_EQ(v.as_string(), s);
  }
}

TEST(YamlScalars, Integers) {
  struct Case {
    const char* text;
    int64_t want;
  };
  for (const Case& c : std::vector<Case>{
           {"0", 0},
           {"42", 42},
           {"-17", -17},
           {"+5", 5},
           {"007", 7},
           {"0x1F", 31},
           {"0xff", 255},
           {"0o17", 15},
           {"0o0", 0},
           {"9223372036854775807", std::numeric_limits<int64_t>::max()},
           {"-9223372036854775808", std::numeric_limits<int64_t>::min()},
           {"0x7fffffffffffffff", std::numeric_limits<int64_t>::max()},
       }) {
    Value v = Scalar(c.text);
    ASSERT_TRUE(v.is_int()) << c.text << " is " << value::TypeName(v.type());
    EXPECT_EQ(v.as_int(), c.want) << c.text;
  }
  for (const char* s : {"0x", "0o", "0o8", "0xg1", "0b101", "1_000", "-0x10", "+0o7", "12abc",
                        "1,000", "0X10", "--1", "+-1", "0x1.5"}) {
    Value v = Scalar(s);
    ASSERT_TRUE(v.is_string()) << s << " is " << value::TypeName(v.type());
    EXPECT_EQ(v.as_string(), s);
  }
}

TEST(YamlScalars, IntegerOverflow) {
  // Decimal integers beyond int64 become doubles, like JSON numbers.
  Value big = Scalar("9223372036854775808");
  ASSERT_TRUE(big.is_double());
  EXPECT_EQ(big.as_double(), 9223372036854775808.0);
  Value small = Scalar("-9223372036854775809");
  ASSERT_TRUE(small.is_double());
  EXPECT_EQ(small.as_double(), -9223372036854775808.0);
  Value huge = Scalar("123456789012345678901234567890");
  ASSERT_TRUE(huge.is_double());
  EXPECT_DOUBLE_EQ(huge.as_double(), 1.2345678901234568e29);
  // Hex and octal ones are bit patterns: rounding them would be wrong, so they are errors.
  EXPECT_EQ(OnlyError("v: 0x8000000000000000\n"),
            "in.yaml:1:4: error: integer 0x8000000000000000 does not fit in 64 bits");
  EXPECT_EQ(OnlyError("v: 0o7777777777777777777777777\n"),
            "in.yaml:1:4: error: integer 0o7777777777777777777777777 does not fit in 64 bits");
  EXPECT_EQ(OnlyError("v: 0x1ffffffffffffffffffff\n"),
            "in.yaml:1:4: error: integer 0x1ffffffffffffffffffff does not fit in 64 bits");
  // Not hex at all, however long: a string.
  EXPECT_TRUE(Scalar("0x1fffffffffffffffffffffz").is_string());
}

TEST(YamlScalars, Floats) {
  struct Case {
    const char* text;
    double want;
  };
  const double inf = std::numeric_limits<double>::infinity();
  for (const Case& c : std::vector<Case>{
           {"1.5", 1.5},
           {"-2.5e3", -2500},
           {"+2.5E-3", 0.0025},
           {".5", 0.5},
           {"-.5", -0.5},
           {"1.", 1.0},
           {"1e3", 1000},
           {"0.0", 0.0},
           {".inf", inf},
           {".Inf", inf},
           {"+.INF", inf},
           {"-.inf", -inf},
           {"1e999", inf},
           {"-1e999", -inf},
           {"1e-999", 0.0},
           {"0.000000000000000000001e-400", 0.0},
           {"100000000000000000000e300", inf},
       }) {
    Value v = Scalar(c.text);
    ASSERT_TRUE(v.is_double()) << c.text << " is " << value::TypeName(v.type());
    EXPECT_EQ(v.as_double(), c.want) << c.text;
  }
  for (const char* s : {".nan", ".NaN", ".NAN"}) {
    Value v = Scalar(s);
    ASSERT_TRUE(v.is_double()) << s;
    EXPECT_TRUE(std::isnan(v.as_double())) << s;
  }
  for (const char* s : {".", "+", "1.2.3", "e5", "1e", "1e+", "inf", "nan", "-.nan", ".infinity",
                        "1.5x", "12:30", "1 2", "- 1x"}) {
    Value v = Scalar(std::string("'") + s + "'");  // quoted: certainly a string
    EXPECT_TRUE(v.is_string());
    if (std::string_view(s) == "- 1x") continue;  // plain, that would be a list
    v = Scalar(s);
    ASSERT_TRUE(v.is_string()) << s << " is " << value::TypeName(v.type());
    EXPECT_EQ(v.as_string(), s);
  }
}

TEST(YamlScalars, QuotedBlockAndTaggedAreStrings) {
  EXPECT_EQ(Scalar("'42'"), Value::String("42"));
  EXPECT_EQ(Scalar("\"true\""), Value::String("true"));
  EXPECT_EQ(Scalar("'null'"), Value::String("null"));
  EXPECT_EQ(Scalar("''"), Value::String(""));
  EXPECT_EQ(Scalar("\"\""), Value::String(""));
  EXPECT_EQ(Scalar("\"a\\tb\\u00e9\""), Value::String("a\tb\xc3\xa9"));
  EXPECT_EQ(Scalar("'it''s'"), Value::String("it's"));
  EXPECT_EQ(Scalar("!!str 42"), Value::String("42"));
  EXPECT_EQ(Scalar("!!str"), Value::String(""));
  EXPECT_EQ(Scalar("!!str true"), Value::String("true"));
  EXPECT_EQ(Scalar("! 12"), Value::String("12"));
  EXPECT_EQ(Scalar("plain text with spaces"), Value::String("plain text with spaces"));
  EXPECT_EQ(One("v: |\n  42\n").Find("v")->as_string(), "42\n");
  EXPECT_EQ(One("v: >-\n  true\n").Find("v")->as_string(), "true");
  EXPECT_EQ(One("? |-\n  7\n: x\n").Find("7")->as_string(), "x");
}

TEST(YamlScalars, OtherCoreTags) {
  Value i = Scalar("!!int '7'");
  ASSERT_TRUE(i.is_int());
  EXPECT_EQ(i.as_int(), 7);
  Value f = Scalar("!!float 1");
  ASSERT_TRUE(f.is_double());
  EXPECT_EQ(f.as_double(), 1.0);
  EXPECT_TRUE(Scalar("!!null ''").is_null());
  EXPECT_TRUE(Scalar("!!bool \"true\"").as_bool());
  EXPECT_TRUE(One("v: !!map {a: 1}").Find("v")->is_object());
  EXPECT_TRUE(One("v: !!seq [1]").Find("v")->is_list());
  EXPECT_EQ(OnlyError("v: !!int abc\n"), "in.yaml:1:4: error: \"abc\" is not a valid !!int");
  EXPECT_EQ(OnlyError("v: !!bool 1\n"), "in.yaml:1:4: error: \"1\" is not a valid !!bool");
  EXPECT_EQ(OnlyError("v: !Ref other\n"), "in.yaml:1:4: error: unsupported tag !Ref");
  EXPECT_EQ(OnlyError("v: !!binary aGk=\n"), "in.yaml:1:4: error: unsupported tag !!binary");
  EXPECT_EQ(OnlyError("v: !!map [1]\n"),
            "in.yaml:1:4: error: tag !!map cannot be used on a sequence");
  EXPECT_EQ(OnlyError("v: !!seq x\n"), "in.yaml:1:4: error: tag !!seq cannot be used on a scalar");
}

TEST(YamlStructure, NestedMapsAndLists) {
  Value doc =
      One("kind: Deployment\n"
          "metadata:\n"
          "  name: web\n"
          "  labels:\n"
          "    app: web\n"
          "    tier: front\n"
          "spec:\n"
          "  replicas: 3\n"
          "  ports:\n"
          "    - 80\n"
          "    - name: https\n"
          "      port: 443\n"
          "    -\n"
          "      - nested\n"
          "      - []\n"
          "  empty: {}\n"
          "apiVersion: apps/v1\n");
  EXPECT_EQ(value::ToJson(doc),
            R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"labels":{"app":"web",)"
            R"("tier":"front"},"name":"web"},"spec":{"empty":{},"ports":[80,{"name":"https",)"
            R"("port":443},["nested",[]]],"replicas":3}})");
  // Keys come out sorted.
  const auto& members = doc.as_object();
  ASSERT_EQ(members.size(), 4u);
  EXPECT_EQ(members[0].first, "apiVersion");
  EXPECT_EQ(members[3].first, "spec");
  EXPECT_EQ(doc.FindPath("spec.ports.1.port")->as_int(), 443);
}

TEST(YamlStructure, KeysAreTheirText) {
  Value doc = One("1: a\ntrue: b\nnull: c\n~: d\n'q': e\n1.50: f\n");
  EXPECT_EQ(value::ToJson(doc), R"({"1":"a","1.50":"f","null":"c","q":"e","true":"b","~":"d"})");
}

TEST(YamlStructure, FlowStyle) {
  Value doc = One("{b: [1, 2.5, 'three', {x: null}], a: {}, c: [], d: [a b, \"c,d\"]}\n");
  EXPECT_EQ(value::ToJson(doc),
            R"({"a":{},"b":[1,2.5,"three",{"x":null}],"c":[],"d":["a b","c,d"]})");
  EXPECT_EQ(value::ToJson(One("[1, [2, [3, []]], {k: v}]")), R"([1,[2,[3,[]]],{"k":"v"}])");
  EXPECT_EQ(value::ToJson(One("{a, b: }")), R"({"a":null,"b":null})");
  EXPECT_EQ(value::ToJson(One("[a: 1, b]")), R"([{"a":1},"b"])");
}

TEST(YamlStructure, MergeKeysAreOrdinaryKeys) {
  // "<<" is a YAML 1.1 feature; in 1.2 it is just a key.
  Value doc = One("base: &b {x: 1}\nd:\n  <<: *b\n  y: 2\n");
  EXPECT_EQ(value::ToJson(*doc.Find("d")), R"({"<<":{"x":1},"y":2})");
}

TEST(YamlStream, MultipleDocuments) {
  Parsed p = Parse(
      "# leading comment\n"
      "a: 1\n"
      "---\n"
      "b: 2\n"
      "...\n"
      "--- [3]\n"
      "---\n"
      "scalar\n");
  EXPECT_TRUE(p.diags.empty()) << p.diags.ToString();
  ASSERT_EQ(p.docs.size(), 4u);
  EXPECT_EQ(value::ToJson(p.docs[0].root), R"({"a":1})");
  EXPECT_EQ(p.docs[0].line, 2u);
  EXPECT_EQ(value::ToJson(p.docs[1].root), R"({"b":2})");
  EXPECT_EQ(p.docs[1].line, 3u);
  EXPECT_EQ(value::ToJson(p.docs[2].root), "[3]");
  EXPECT_EQ(p.docs[2].line, 6u);
  EXPECT_EQ(p.docs[3].root, Value::String("scalar"));
  EXPECT_EQ(p.docs[3].line, 7u);
}

TEST(YamlStream, EmptyDocumentsAreSkipped) {
  EXPECT_TRUE(Parse("").docs.empty());
  EXPECT_TRUE(Parse("# only a comment\n\n   \n").docs.empty());
  Parsed p = Parse("---\n# nothing\n---\n---\na: 1\n--- # c\n...\n---\n");
  EXPECT_TRUE(p.diags.empty()) << p.diags.ToString();
  ASSERT_EQ(p.docs.size(), 1u);
  EXPECT_EQ(p.docs[0].line, 4u);
  EXPECT_EQ(value::ToJson(p.docs[0].root), R"({"a":1})");
  // An explicit null is content, not an empty document.
  Parsed n = Parse("--- ~\n--- null\n--- ''\n");
  ASSERT_EQ(n.docs.size(), 3u);
  EXPECT_TRUE(n.docs[0].root.is_null());
  EXPECT_TRUE(n.docs[1].root.is_null());
  EXPECT_EQ(n.docs[2].root, Value::String(""));
}

TEST(YamlScalars, BlockScalars) {
  Value doc =
      One("literal: |\n"
          "  line one\n"
          "    indented\n"
          "  line three\n"
          "\n"
          "strip: |-\n"
          "  no newline\n"
          "\n"
          "keep: |+\n"
          "  kept\n"
          "\n"
          "\n"
          "folded: >\n"
          "  folded\n"
          "  into one\n"
          "\n"
          "  paragraph two\n"
          "folded_strip: >-\n"
          "  a\n"
          "  b\n"
          "indicator: |2\n"
          "    two extra\n"
          "last: x\n");
  EXPECT_EQ(doc.Find("literal")->as_string(), "line one\n  indented\nline three\n");
  EXPECT_EQ(doc.Find("strip")->as_string(), "no newline");
  EXPECT_EQ(doc.Find("keep")->as_string(), "kept\n\n\n");
  EXPECT_EQ(doc.Find("folded")->as_string(), "folded into one\nparagraph two\n");
  EXPECT_EQ(doc.Find("folded_strip")->as_string(), "a b");
  EXPECT_EQ(doc.Find("indicator")->as_string(), "  two extra\n");
  EXPECT_EQ(doc.Find("last")->as_string(), "x");
}

TEST(YamlMarks, EveryNodeHasItsPosition) {
  const char* text =
      "# comment\n"                // 1
      "name: web\n"                // 2
      "spec:\n"                    // 3
      "  ports: [80, {p: 443}]\n"  // 4
      "  env:\n"                   // 5
      "    - key: A\n"             // 6
      "      value: \"1\"\n"       // 7
      "  text: |\n"                // 8
      "    body\n";                // 9
  Parsed p = Parse(text);
  ASSERT_TRUE(p.diags.empty()) << p.diags.ToString();
  ASSERT_EQ(p.docs.size(), 1u);
  const Value& root = p.docs[0].root;
  EXPECT_EQ(p.docs[0].line, 2u);
  auto at = [&](const char* path, uint32_t line, uint32_t column) {
    const Value* v = root.FindPath(path);
    ASSERT_NE(v, nullptr) << path;
    EXPECT_EQ(v->line(), line) << path;
    EXPECT_EQ(v->column(), column) << path;
  };
  EXPECT_EQ(root.line(), 2u);
  EXPECT_EQ(root.column(), 1u);
  at("name", 2, 7);
  at("spec", 4, 3);
  at("spec.ports", 4, 10);
  at("spec.ports.0", 4, 11);
  at("spec.ports.1", 4, 15);
  at("spec.ports.1.p", 4, 19);
  at("spec.env", 6, 5);
  at("spec.env.0", 6, 7);
  at("spec.env.0.key", 6, 12);
  at("spec.env.0.value", 7, 15);  // a quoted scalar is marked at its text
  at("spec.text", 8, 9);
}

TEST(YamlMarks, ColumnsCountCharactersNotBytes) {
  Value doc = One("\xc3\xa9t\xc3\xa9: [x]\n");
  const Value* v = doc.Find("\xc3\xa9t\xc3\xa9");
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(v->column(), 6u);
  EXPECT_EQ(v->as_list()[0].column(), 7u);
}

TEST(YamlMarks, MarksSurviveSorting) {
  Value doc = One("z: 1\ny: [2]\nx: {w: 3}\n");
  EXPECT_EQ(doc.Find("z")->line(), 1u);
  EXPECT_EQ(doc.Find("y")->line(), 2u);
  EXPECT_EQ(doc.Find("y")->column(), 4u);
  EXPECT_EQ(doc.Find("x")->line(), 3u);
  EXPECT_EQ(doc.FindPath("x.w")->column(), 8u);
}

TEST(YamlAnchors, AliasesAreCopies) {
  Value doc =
      One("defaults: &d\n"
          "  cpu: 1\n"
          "  tags: [a, b]\n"
          "one: *d\n"
          "two: *d\n"
          "port: &p 8080\n"
          "ports: [*p, *p]\n"
          "&k key: value\n"
          "keys: {*k : again}\n");
  ASSERT_FALSE(doc.is_null());
  EXPECT_EQ(*doc.Find("one"), *doc.Find("defaults"));
  EXPECT_EQ(*doc.Find("two"), *doc.Find("defaults"));
  EXPECT_EQ(value::ToJson(*doc.Find("ports")), "[8080,8080]");
  EXPECT_EQ(doc.Find("key")->as_string(), "value");
  EXPECT_EQ(doc.FindPath("keys.key")->as_string(), "again");
  // A copy is marked where the alias is; its insides keep the anchor's marks.
  EXPECT_EQ(doc.Find("one")->line(), 4u);
  EXPECT_EQ(doc.Find("one")->column(), 6u);
  EXPECT_EQ(doc.FindPath("one.cpu")->line(), 2u);
  EXPECT_EQ(doc.FindPath("ports.1")->column(), 13u);
  // "*k : again" repeats "key". A node's mark is where its properties (anchor, tag) start.
  EXPECT_EQ(OnlyError("&k key: value\n*k : again\n"),
            "in.yaml:2:1: error: duplicate key \"key\" (first defined at line 1, column 1)");
}

TEST(YamlAnchors, ScalarAnchorsKeepTheirType) {
  Value doc = One("a: &n 1.5\nb: *n\nc: &s '1.5'\nd: *s\n");
  EXPECT_TRUE(doc.Find("b")->is_double());
  EXPECT_TRUE(doc.Find("d")->is_string());
  // An anchored key is remembered as a value too.
  Value k = One("&k 12: x\ny: *k\n");
  EXPECT_TRUE(k.Find("y")->is_int());
}

TEST(YamlAnchors, AnchorsAreRedefinableAndPerDocument) {
  Value doc = One("a: &x 1\nb: *x\nc: &x 2\nd: *x\n");
  EXPECT_EQ(value::ToJson(doc), R"({"a":1,"b":1,"c":2,"d":2})");
  Parsed p = Parse("a: &x 1\n---\nb: *x\n");
  ASSERT_EQ(p.docs.size(), 1u);
  ASSERT_EQ(p.diags.items().size(), 1u);
  EXPECT_EQ(p.diags.items()[0].ToString(), "in.yaml:3:4: error: unknown anchor \"x\"");
}

TEST(YamlAnchors, UnknownAndRecursiveAliases) {
  EXPECT_EQ(OnlyError("a: *nope\n"), "in.yaml:1:4: error: unknown anchor \"nope\"");
  // The anchor is not complete where it is used: no cycles.
  EXPECT_EQ(OnlyError("a: &r [1, *r]\n"), "in.yaml:1:11: error: unknown anchor \"r\"");
  EXPECT_EQ(OnlyError("a: &m\n  b: *m\n"), "in.yaml:2:6: error: unknown anchor \"m\"");
}

TEST(YamlAnchors, AliasBombIsRejected) {
  std::string bomb =
      "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n";
  char prev = 'a';
  for (char c = 'b'; c <= 'j'; ++c) {
    bomb += std::string(1, c) + ": &" + c + " [";
    for (int i = 0; i < 9; ++i) bomb += std::string(i ? ", *" : "*") + prev;
    bomb += "]\n";
    prev = c;
  }
  Parsed p = Parse(bomb);
  EXPECT_TRUE(p.docs.empty());
  ASSERT_EQ(p.diags.ErrorCount(), 1u);
  EXPECT_NE(p.diags.items()[0].message.find("more than 1000000 nodes"), std::string::npos)
      << p.diags.ToString();
  EXPECT_GT(p.diags.items()[0].pos.line, 5u);
  // A few levels are fine.
  Parsed small = Parse("a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n");
  EXPECT_TRUE(small.diags.empty()) << small.diags.ToString();
  ASSERT_EQ(small.docs.size(), 1u);
  EXPECT_EQ(value::ToJson(*small.docs[0].root.Find("c")),
            R"([[["x","x"],["x","x"]],[["x","x"],["x","x"]]])");
}

TEST(YamlAnchors, NestedAnchorsCannotMakeCopyingQuadratic) {
  // Each anchored level keeps a copy of everything inside it.
  std::string text;
  for (int i = 0; i < 2000; ++i) text += "&a" + std::to_string(i) + " [x, x, x, x, x, x, x, x, ";
  text += "x" + std::string(2000, ']') + "\n";
  Parsed p = Parse(text);
  EXPECT_TRUE(p.docs.empty());
  EXPECT_TRUE(p.diags.HasErrors());
}

TEST(YamlErrors, DuplicateKey) {
  EXPECT_EQ(OnlyError("name: a\nother: b\nname: c\n"),
            "in.yaml:3:1: error: duplicate key \"name\" (first defined at line 1, column 1)");
  EXPECT_EQ(OnlyError("spec:\n  z: 1\n  b: 2\n  a: 3\n  b: 4\n  b: 5\n"),
            "in.yaml:5:3: error: duplicate key \"b\" (first defined at line 3, column 3)");
  EXPECT_EQ(OnlyError("{x: 1, 'x': 2}"),
            "in.yaml:1:8: error: duplicate key \"x\" (first defined at line 1, column 2)");
  // Keys are compared by text: 1 and "1" are the same key.
  EXPECT_EQ(OnlyError("1: a\n\"1\": b\n"),
            "in.yaml:2:1: error: duplicate key \"1\" (first defined at line 1, column 1)");
  EXPECT_EQ(OnlyError("'': a\nb: 1\n\"\": b\n"),
            "in.yaml:3:1: error: duplicate key \"\" (first defined at line 1, column 1)");
  // Different keys that merely sort together are fine.
  EXPECT_EQ(value::ToJson(One("b: 1\na: 2\nab: 3\n")), R"({"a":2,"ab":3,"b":1})");
}

TEST(YamlErrors, ErrorsStopTheStreamButKeepEarlierDocuments) {
  Parsed p = Parse("a: 1\n---\nb: 2\n---\nc: [1, 2\nd: 3\n---\ne: 5\n");
  ASSERT_EQ(p.docs.size(), 2u);
  EXPECT_EQ(value::ToJson(p.docs[1].root), R"({"b":2})");
  ASSERT_EQ(p.diags.ErrorCount(), 1u);
  EXPECT_EQ(p.diags.items()[0].pos.file, "in.yaml");
  EXPECT_EQ(p.diags.items()[0].pos.line, 6u);
  Parsed dup = Parse("a: 1\n---\nb: 2\nb: 3\n---\nc: 4\n");
  ASSERT_EQ(dup.docs.size(), 1u);
  EXPECT_EQ(dup.diags.ErrorCount(), 1u);
}

TEST(YamlErrors, SyntaxErrorPositions) {
  EXPECT_EQ(OnlyError("a:\n  b: 1\n c: 2\n"),
            "in.yaml:3:2: error: did not find expected key (while parsing a block mapping at "
            "line 1, column 1)");
  EXPECT_EQ(OnlyError("a: 1\nb: \"unclosed\nc: 3\n"),
            "in.yaml:4:1: error: found unexpected end of stream (while scanning a quoted scalar "
            "at line 2, column 4)");
  EXPECT_EQ(OnlyError("a: 'x\n"),
            "in.yaml:2:1: error: found unexpected end of stream (while scanning a quoted scalar "
            "at line 1, column 4)");
  EXPECT_EQ(OnlyError("a: b: c\n"),
            "in.yaml:1:5: error: mapping values are not allowed in this context");
  EXPECT_EQ(OnlyError("- a\nb: 1\n"),
            "in.yaml:2:1: error: did not find expected '-' indicator (while parsing a block "
            "collection at line 1, column 1)");
  EXPECT_EQ(OnlyError("key: [1, 2\n"),
            "in.yaml:2:1: error: did not find expected ',' or ']' (while parsing a flow sequence "
            "at line 1, column 6)");
  EXPECT_EQ(OnlyError("a:\n\tb: 1\n"),
            "in.yaml:2:1: error: found character that cannot start any token (while scanning for "
            "the next token at line 2, column 1)");
  EXPECT_EQ(OnlyError("a: 1\nb\n"),
            "in.yaml:3:1: error: could not find expected ':' (while scanning a simple key at "
            "line 2, column 1)");
}

TEST(YamlErrors, InvalidUtf8) {
  std::string text = "a: ok\nb: \xff\xfe\n";
  EXPECT_EQ(OnlyError(text), "in.yaml:2:4: error: invalid leading UTF-8 octet (#FF)");
  EXPECT_EQ(OnlyError(std::string("a: \0\n", 5)),
            "in.yaml:1:4: error: control characters are not allowed (#0)");
}

TEST(YamlErrors, KeysMustBeScalars) {
  EXPECT_EQ(OnlyError("? [a, b]\n: c\n"),
            "in.yaml:1:3: error: mapping keys must be scalars, not a sequence");
  EXPECT_EQ(OnlyError("{? {a: 1} : c}\n"),
            "in.yaml:1:4: error: mapping keys must be scalars, not a mapping");
  EXPECT_EQ(OnlyError("l: &l [1]\n*l : x\n"),
            "in.yaml:2:1: error: mapping keys must be scalars; alias *l is a list");
}

TEST(YamlErrors, DeepNestingIsRejected) {
  std::string deep(5000, '[');
  Parsed p = Parse(deep + std::string(5000, ']'));
  EXPECT_TRUE(p.docs.empty());
  ASSERT_EQ(p.diags.ErrorCount(), 1u);
  EXPECT_EQ(p.diags.items()[0].ToString(),
            "in.yaml:1:1001: error: values nest deeper than 1000 levels");
  // Aliases cannot be used to build depth either.
  std::string chain = "a0: &a0 " + std::string(600, '[') + std::string(600, ']') + "\n";
  chain += "a1: &a1 " + std::string(600, '[') + "*a0" + std::string(600, ']') + "\n";
  Parsed c = Parse(chain);
  EXPECT_TRUE(c.docs.empty());
  ASSERT_EQ(c.diags.ErrorCount(), 1u);
  EXPECT_NE(c.diags.items()[0].message.find("deeper than 1000"), std::string::npos);
  // 900 levels are fine.
  Value ok = One(std::string(900, '[') + std::string(900, ']'));
  EXPECT_TRUE(ok.is_list());
}

/// A generated resource document and the value it must parse to.
struct Generated {
  std::string text;
  Value want;
};

Generated MakeResource(int i) {
  Generated g;
  const std::string name = "svc-" + std::to_string(i);
  g.text =
      "---\n"
      "kind: Service\n"
      "name: " +
      name +
      "\n"
      "spec:\n"
      "  port: " +
      std::to_string(8000 + i) +
      "\n"
      "  ratio: " +
      std::to_string(i) +
      ".25\n"
      "  enabled: " +
      (i % 2 ? "true" : "false") +
      "\n"
      "  owner: ~\n"
      "  labels: {app: \"" +
      name + "\", idx: '" + std::to_string(i) +
      "'}\n"
      "  hosts:\n"
      "    - a" +
      std::to_string(i) +
      ".example.com\n"
      "    - -" +
      std::to_string(i) + "\n";
  Value spec = Value::MakeObject();
  spec.Set("port", Value::Int(8000 + i));
  spec.Set("ratio", Value::Double(i + 0.25));
  spec.Set("enabled", Value::Bool(i % 2 != 0));
  spec.Set("owner", Value::Null());
  Value labels = Value::MakeObject();
  labels.Set("app", Value::String(name));
  labels.Set("idx", Value::String(std::to_string(i)));
  spec.Set("labels", labels);
  spec.Set("hosts", Value::MakeList(
                        {Value::String("a" + std::to_string(i) + ".example.com"), Value::Int(-i)}));
  g.want = Value::MakeObject();
  g.want.Set("kind", Value::String("Service"));
  g.want.Set("name", Value::String(name));
  g.want.Set("spec", spec);
  return g;
}

TEST(YamlStream, LargeGeneratedStreamRoundTrips) {
  constexpr int kDocs = 5000;
  std::string text;
  std::vector<Value> want;
  for (int i = 0; i < kDocs; ++i) {
    Generated g = MakeResource(i);
    text += g.text;
    want.push_back(std::move(g.want));
  }
  Parsed p = Parse(text);
  ASSERT_TRUE(p.diags.empty()) << p.diags.ToString();
  ASSERT_EQ(p.docs.size(), static_cast<size_t>(kDocs));
  for (int i = 0; i < kDocs; ++i) {
    ASSERT_EQ(p.docs[i].root, want[i]) << i << ": " << value::ToJson(p.docs[i].root);
    ASSERT_EQ(p.docs[i].line, static_cast<uint32_t>(i * 12 + 1));  // the "---"
    ASSERT_EQ(p.docs[i].root.FindPath("spec.hosts.1")->line(), static_cast<uint32_t>(i * 12 + 12));
  }
  // The canonical JSON of what was parsed parses back to the same values.
  for (int i = 0; i < kDocs; i += 97) {
    auto again = value::ParseJson(value::ToJson(p.docs[i].root));
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(*again, p.docs[i].root);
  }
}

TEST(YamlStream, ByteOrderMarkAndCrLf) {
  Parsed p = Parse(
      "\xef\xbb\xbf"
      "a: 1\r\nb:\r\n  - x\r\n");
  ASSERT_TRUE(p.diags.empty()) << p.diags.ToString();
  ASSERT_EQ(p.docs.size(), 1u);
  EXPECT_EQ(value::ToJson(p.docs[0].root), R"({"a":1,"b":["x"]})");
  EXPECT_EQ(p.docs[0].root.FindPath("b.0")->line(), 3u);
  EXPECT_EQ(p.docs[0].root.FindPath("b.0")->column(), 5u);
}

}  // namespace
}  // namespace driftless::yaml
