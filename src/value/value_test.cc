#include "value/value.h"

#include <gtest/gtest.h>

#include "value/diff.h"
#include "value/render.h"

namespace driftless::value {
namespace {

TEST(Value, ObjectsStaySortedAndCompareStructurally) {
  Value o = Value::MakeObject();
  o.Set("b", Value::Int(1));
  o.Set("a", Value::String("x"));
  EXPECT_EQ(o.as_object()[0].first, "a");
  EXPECT_EQ(ToJson(o), R"({"a":"x","b":1})");
  Value p = Value::MakeObject({{"b", Value::Double(1.0)}, {"a", Value::String("x")}});
  EXPECT_EQ(o, p);
  EXPECT_TRUE(o.Erase("a"));
  EXPECT_FALSE(o.Erase("a"));
  EXPECT_NE(o, p);
}

TEST(Value, ChangingTheKindKeepsTypeMarkAndSensitivityApart) {
  // The type and the sensitive flag live in the tail padding of the variant (see value.h):
  // nothing that rewrites the variant may touch them.
  std::vector<Value> kinds = {Value(),
                              Value::Bool(true),
                              Value::Int(-7),
                              Value::Double(2.5),
                              Value::String("a string longer than the small buffer"),
                              Value::MakeList({Value::Int(1), Value::String("x")}),
                              Value::MakeObject({{"k", Value::Bool(false)}}),
                              Value::Unknown()};
  for (const Value& from : kinds) {
    for (const Value& to : kinds) {
      Value v = from;
      v.set_mark(11, 22);
      v.set_sensitive(true);
      v = to;
      EXPECT_EQ(v.type(), to.type());
      EXPECT_FALSE(v.sensitive());
      EXPECT_EQ(v, to);
      Value w = to;
      w.set_sensitive(true);
      w.set_mark(3, 4);
      Value moved = std::move(w);
      EXPECT_EQ(moved.type(), to.type());
      EXPECT_TRUE(moved.sensitive());
      EXPECT_EQ(moved.line(), 3u);
      EXPECT_EQ(moved.column(), 4u);
      EXPECT_EQ(moved, to);
    }
  }
  Value s = Value::String("x");
  s.set_sensitive(true);
  s.as_string() = std::string(100, 'y');
  EXPECT_TRUE(s.is_string());
  EXPECT_TRUE(s.sensitive());
  Value list = Value::MakeList();
  list.set_sensitive(true);
  for (int i = 0; i < 100; ++i) list.as_list().push_back(Value::Int(i));
  EXPECT_TRUE(list.is_list());
  EXPECT_TRUE(list.sensitive());
  EXPECT_EQ(list.as_list()[99].as_int(), 99);
}

TEST(Value, JsonRoundTrip) {
  const char* text =
      R"({"a":[1,2.5,true,null,"s\n\"q\""],"b":{"c":{"$unknown":true}},"u":"\u00e9"})";
  auto v = ParseJson(text);
  ASSERT_TRUE(v.ok()) << v.error().message;
  EXPECT_TRUE(v->Find("b")->Find("c")->is_unknown());
  EXPECT_EQ(v->Find("u")->as_string(), "\xc3\xa9");
  auto again = ParseJson(ToJson(*v));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *v);
  EXPECT_EQ(v->FindPath("a.1")->as_double(), 2.5);
  EXPECT_FALSE(ParseJson("{\"a\":").ok());
  EXPECT_FALSE(ParseJson("[1,]").ok());
  EXPECT_FALSE(ParseJson("1 2").ok());
  EXPECT_FALSE(ParseJson("9933e933").ok());           // found by json_fuzz: no infinity in JSON
  EXPECT_FALSE(ParseJson(R"("\ud800")").ok());        // a lone high surrogate
  EXPECT_FALSE(ParseJson(R"("\udc00")").ok());        // a lone low surrogate
  EXPECT_FALSE(ParseJson(R"("\ud800\u0041")").ok());  // high surrogate, then no low one
  EXPECT_EQ(ParseJson(R"("\ud83d\ude80")")->as_string(), "\xf0\x9f\x9a\x80");
}

TEST(Render, BlocksAndSensitive) {
  Value o = Value::MakeObject();
  o.Set("content", Value::String("one\ntwo\n"));
  Value secret = Value::String("hunter2");
  secret.set_sensitive(true);
  o.Set("password", secret);
  o.Set("mode", Value::String("0644"));
  o.Set("list", Value::MakeList({Value::Int(1), Value::String("a: b")}));
  EXPECT_EQ(RenderText(o),
            "content: |\n  one\n  two\nlist:\n  - 1\n  - \"a: b\"\nmode: \"0644\"\n"
            "password: (sensitive)\n");
  EXPECT_EQ(ToJson(Redact(o)).find("hunter2"), std::string::npos);
}

TEST(Diff, UnifiedHunks) {
  EXPECT_EQ(UnifiedDiff("a\nb\nc\n", "a\nb\nc\n"), "");
  EXPECT_EQ(UnifiedDiff("a\nb\nc\n", "a\nB\nc\n"), "@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n");
  EXPECT_EQ(UnifiedDiff("", "x\n"), "@@ -0,0 +1,1 @@\n+x\n");
  // Everything added or removed (a create, a delete) takes a shortcut: the same hunks as the
  // general diff, with or without a last newline, with labels.
  EXPECT_EQ(UnifiedDiff("", "x\ny"), "@@ -0,0 +1,2 @@\n+x\n+y\n");
  EXPECT_EQ(UnifiedDiff("x\n\ny\n", ""), "@@ -1,3 +0,0 @@\n-x\n-\n-y\n");
  EXPECT_EQ(UnifiedDiff("", "x\n", "a", "b"), "--- a\n+++ b\n@@ -0,0 +1,1 @@\n+x\n");
  std::string before, after;
  for (int i = 0; i < 20; ++i) {
    before += std::to_string(i) + "\n";
    after += (i == 2 || i == 17 ? "changed" : std::to_string(i)) + "\n";
  }
  std::string d = UnifiedDiff(before, after);
  EXPECT_NE(d.find("@@ -1,6 +1,6 @@"), std::string::npos) << d;
  EXPECT_NE(d.find("@@ -15,6 +15,6 @@"), std::string::npos) << d;
}

TEST(Diff, RandomEditsReconstruct) {
  // Applying the edit script to `before` must give `after`.
  unsigned seed = 7;
  auto rnd = [&] { return seed = seed * 1103515245 + 12345, (seed >> 16) & 0x7fff; };
  for (int round = 0; round < 200; ++round) {
    std::string a, b;
    int na = rnd() % 12, nb = rnd() % 12;
    for (int i = 0; i < na; ++i) a += std::string(1, static_cast<char>('a' + rnd() % 4)) + "\n";
    for (int i = 0; i < nb; ++i) b += std::string(1, static_cast<char>('a' + rnd() % 4)) + "\n";
    std::string rebuilt_a, rebuilt_b;
    for (const auto& l : DiffLines(a, b)) {
      if (l.op != DiffLine::Op::kInsert) rebuilt_a += l.text + "\n";
      if (l.op != DiffLine::Op::kDelete) rebuilt_b += l.text + "\n";
    }
    EXPECT_EQ(rebuilt_a, a);
    EXPECT_EQ(rebuilt_b, b);
  }
}

}  // namespace
}  // namespace driftless::value
