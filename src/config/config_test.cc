#include <gtest/gtest.h>

#include "config/evaluate.h"
#include "config/interpolate.h"
#include "config/loader.h"
#include "fakes/memory_provider.h"
#include "fakes/memory_source.h"

namespace driftless::config {
namespace {

using value::Value;

class ConfigTest : public ::testing::Test {
 protected:
  ConfigTest() : world_(std::make_shared<test::MemoryWorld>()) {
    registry_.Register(test::NewMemoryProvider(world_));
    src_.files["driftless.yaml"] =
        "project: shop\nvars:\n  replicas: 1\n  name: api\nenvironments:\n"
        "  - branch: main\n    name: production\n    vars: {replicas: 3}\n"
        "targets:\n  mem: {provider: mem}\n";
  }

  // Loads and evaluates; returns all diagnostics as text.
  std::string Eval(const std::string& env = "default") {
    diags_ = Diagnostics();
    decls_ = LoadDeclarations(src_, registry_, diags_);
    if (!diags_.HasErrors()) {
      EvalOptions o;
      o.env = env;
      o.salt = "s";
      o.secret = [](const std::string& n) -> std::optional<std::string> {
        if (n == "TOKEN") return std::string("t0ken");
        return std::nullopt;
      };
      env_ = Environment::Evaluate(decls_, registry_, src_, o, diags_);
    }
    diags_.Sort();
    return diags_.ToString();
  }

  const Value& Spec(const std::string& address) {
    return env_->resources()[static_cast<size_t>(env_->IndexOf(address))].spec;
  }

  std::shared_ptr<test::MemoryWorld> world_;
  provider::Registry registry_;
  test::MemorySource src_;
  Declarations decls_;
  Diagnostics diags_;
  std::unique_ptr<Environment> env_;
};

TEST_F(ConfigTest, InterpolatesVariablesEnvironmentAndReferences) {
  src_.files["a.yaml"] =
      "kind: mem.object\nname: a\nspec:\n  key: \"${project}-${env}\"\n  value: "
      "\"${var.replicas}\"\n"
      "---\nkind: mem.object\nname: b\nspec:\n  key: b\n  value: \"${mem.object.a.key}/x\"\n"
      "  tags: {n: \"${var.replicas}\", esc: \"$${literal}\"}\n";
  ASSERT_EQ(Eval("production"), "");
  EXPECT_EQ(Spec("mem.object/a").Find("key")->as_string(), "shop-production");
  EXPECT_EQ(Spec("mem.object/a").Find("value")->as_string(), "3");  // coerced to string
  EXPECT_EQ(Spec("mem.object/b").Find("value")->as_string(), "shop-production/x");
  EXPECT_EQ(Spec("mem.object/b").Find("tags")->Find("n")->as_int(), 3);  // whole value keeps type
  EXPECT_EQ(Spec("mem.object/b").Find("tags")->Find("esc")->as_string(), "${literal}");
  // b depends on a through the reference.
  int a = env_->IndexOf("mem.object/a"), b = env_->IndexOf("mem.object/b");
  std::span<const size_t> deps = env_->graph().Predecessors(static_cast<size_t>(b));
  EXPECT_EQ(std::vector<size_t>(deps.begin(), deps.end()),
            std::vector<size_t>{static_cast<size_t>(a)});
}

TEST_F(ConfigTest, ComputedReferenceIsUnknownUntilApplied) {
  src_.files["a.yaml"] =
      "kind: mem.object\nname: a\nspec: {key: a, value: hello}\n---\n"
      "kind: mem.object\nname: b\nspec: {key: b, value: \"len=${mem.object.a.length}\"}\n";
  ASSERT_EQ(Eval(), "");
  EXPECT_TRUE(Spec("mem.object/b").Find("value")->is_unknown());
  EXPECT_TRUE(
      env_->resources()[static_cast<size_t>(env_->IndexOf("mem.object/b"))].spec_hash.empty());
}

TEST_F(ConfigTest, SecretsAreSensitiveAndHashedWithTheSalt) {
  src_.files["a.yaml"] =
      "kind: mem.object\nname: a\nspec: {key: a, value: \"Bearer ${secret.TOKEN}\"}\n";
  ASSERT_EQ(Eval(), "");
  const Value& v = *Spec("mem.object/a").Find("value");
  EXPECT_TRUE(v.sensitive());
  EXPECT_EQ(v.as_string(), "Bearer t0ken");
  src_.files["a.yaml"] =
      "kind: mem.object\nname: a\nspec: {key: a, value: \"${secret.MISSING}\"}\n";
  EXPECT_NE(Eval().find("secret MISSING is not set"), std::string::npos);
  EXPECT_NE(diags_.ToString().find("DRIFTLESS_SECRET_MISSING"), std::string::npos);
}

TEST_F(ConfigTest, ReportsEveryErrorWithPositions) {
  src_.files["a.yaml"] =
      "kind: mem.objekt\nname: a\n---\n"                              // unknown kind, line 1
      "kind: mem.object\nname: b\nspec: {key: b, valu: x}\n"          // unknown field, line 6
      "---\nkind: mem.object\nname: c\nspec: {key: 5, tags: [1]}\n";  // wrong type, line 10
  std::string out = Eval();
  EXPECT_NE(
      out.find("a.yaml:1:7: error: unknown kind \"mem.objekt\" (did you mean \"mem.object\"?)"),
      std::string::npos)
      << out;
  EXPECT_NE(out.find("a.yaml:6:22: error: unknown field \"valu\" in spec of mem.object/b (did you "
                     "mean \"value\"?)"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("a.yaml:10:22: error: spec.tags of mem.object/c must be a map, not a list"),
            std::string::npos)
      << out;
  EXPECT_EQ(diags_.ErrorCount(), 3u) << out;
}

TEST_F(ConfigTest, RetentionOfDeliveredNotifications) {
  const std::string project = src_.files["driftless.yaml"];
  EXPECT_EQ(Eval(), "");
  EXPECT_EQ(decls_.project.notification_retention, 7 * 24 * 3600);  // the default
  src_.files["driftless.yaml"] = project + "retention: {notifications: 30d}\n";
  EXPECT_EQ(Eval(), "");
  EXPECT_EQ(decls_.project.notification_retention, 30 * 24 * 3600);
  src_.files["driftless.yaml"] = project + "retention:\n  notifications: soon\n  events: 1d\n";
  std::string out = Eval();
  EXPECT_NE(out.find("error: retention.notifications must be a duration like 7d, 72h or 30m"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("unknown key \"events\" in retention"), std::string::npos) << out;
}

TEST_F(ConfigTest, CyclesDuplicatesAndMissingReferences) {
  src_.files["a.yaml"] =
      "kind: mem.object\nname: a\nspec: {key: \"${mem.object.b.key}\"}\n---\n"
      "kind: mem.object\nname: b\nspec: {key: \"${mem.object.a.key}\"}\n";
  EXPECT_NE(Eval().find("dependency cycle: mem.object/a -> mem.object/b -> mem.object/a"),
            std::string::npos)
      << diags_.ToString();
  src_.files["a.yaml"] = "kind: mem.object\nname: a\nspec: {key: a}\n";
  src_.files["b.yaml"] = "kind: mem.object\nname: a\nspec: {key: a2}\n";
  EXPECT_NE(
      Eval().find(
          "b.yaml:1:7: error: duplicate resource mem.object/a (first declared at a.yaml:1:7)"),
      std::string::npos)
      << diags_.ToString();
  src_.files.erase("b.yaml");
  src_.files["a.yaml"] =
      "kind: mem.object\nname: a\ndepends_on: [mem.object/zz]\nspec: {key: \"${var.nope}\"}\n";
  std::string out = Eval();
  EXPECT_NE(out.find("depends on mem.object/zz, which is not declared"), std::string::npos) << out;
}

TEST_F(ConfigTest, UnknownVariableNamesPosition) {
  src_.files["a.yaml"] = "kind: mem.object\nname: a\nspec:\n  key: \"x-${var.nope}\"\n";
  std::string out = Eval();
  EXPECT_NE(out.find("a.yaml:4:11: error: unknown variable ${var.nope}"), std::string::npos) << out;
}

TEST_F(ConfigTest, ProviderValidationMapsToTheField) {
  src_.files["a.yaml"] = "kind: mem.object\nname: a\nspec:\n  key: a/b\n";
  std::string out = Eval();
  EXPECT_NE(out.find("a.yaml:4:8: error: mem.object/a: spec.key: must not contain /"),
            std::string::npos)
      << out;
}

TEST_F(ConfigTest, ManyFilesLoadInPathOrderWhateverThreadParsesThem) {
  // Enough files for several parse threads: resources come out sorted, every problem is
  // reported in file order, and the hash covers every file.
  for (int f = 0; f < 40; ++f) {
    std::string text;
    for (int d = 0; d < 3; ++d) {
      std::string name = "r" + std::to_string(39 - f) + "_" + std::to_string(d);
      text += "---\nkind: mem.object\nname: " + name + "\nspec: {key: " + name + "}\n";
    }
    if (f % 10 == 3) text += "---\nkind: mem.object\nname: bad" + std::to_string(f) + "\n";
    char file[32];
    std::snprintf(file, sizeof file, "f%02d.yaml", f);
    src_.files[file] = text;
  }
  Diagnostics diags;
  Declarations decls = LoadDeclarations(src_, registry_, diags);
  ASSERT_EQ(decls.resources.size(), 124u);
  for (size_t i = 1; i < decls.resources.size(); ++i) {
    EXPECT_LT(decls.resources[i - 1].address, decls.resources[i].address);
  }
  ASSERT_EQ(diags.items().size(), 4u);
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(diags.items()[i].pos.file, "f" + std::to_string(i) + "3.yaml");
  }
  Diagnostics again;
  EXPECT_EQ(LoadDeclarations(src_, registry_, again).hash, decls.hash);
  src_.files["f17.yaml"] += "# edited\n";
  EXPECT_NE(LoadDeclarations(src_, registry_, again).hash, decls.hash);
}

TEST(Interpolate, ParsesExpressions) {
  Diagnostics d;
  auto refs =
      ParseReferences("a ${var.x} ${postgres.role.shop.name} ${env} $${no}", {"f", 1, 1}, d);
  ASSERT_EQ(refs.size(), 3u);
  EXPECT_EQ(refs[1].address, "postgres.role/shop");
  EXPECT_EQ(refs[1].attr, "name");
  ParseReferences("${var.x", {"f", 1, 1}, d);
  ParseReferences("${what}", {"f", 1, 1}, d);
  EXPECT_EQ(d.ErrorCount(), 2u);
  EXPECT_TRUE(HasInterpolation("x${a}"));
  EXPECT_FALSE(HasInterpolation("x$${a}"));
}

}  // namespace
}  // namespace driftless::config

namespace driftless::config {
namespace {

// Loads and evaluates `src` as the workspace does with a cache (keep_for_cache, raw specs
// released), with `cache` when given.
struct CachedRun {
  Declarations decls;
  Diagnostics diags;
  std::unique_ptr<Environment> env;
};
std::unique_ptr<CachedRun> RunWithCache(const source::Source& src,
                                        const provider::Registry& registry,
                                        const EvalCache* cache) {
  auto run = std::make_unique<CachedRun>();
  run->decls = LoadDeclarations(src, registry, run->diags, cache);
  EvalOptions o;
  o.salt = "s";
  o.release_raw_specs = true;
  o.keep_for_cache = true;
  if (cache != nullptr) o.cache_context = cache->context();
  o.secret = [](const std::string&) -> std::optional<std::string> { return "t0ken"; };
  run->env = Environment::Evaluate(run->decls, registry, src, o, run->diags);
  return run;
}

TEST(EvalCache, WhatIsReadBackIsExactlyWhatWasEvaluated) {
  auto world = std::make_shared<test::MemoryWorld>();
  provider::Registry registry;
  registry.Register(test::NewMemoryProvider(world));
  test::MemorySource src;
  src.files["driftless.yaml"] =
      "project: shop\ndefaults:\n  policy: {drift: enforce}\ntargets:\n  mem: {provider: mem}\n";
  src.files["a.yaml"] =
      "kind: mem.object\nname: a\nspec:\n  key: a\n  tags:\n    i: 3\n    d: 2.5\n"
      "    big: 9007199254740993\n    neg: -12\n    t: true\n    n: null\n"
      "    l: [1, \"x\", [], {}]\n    u: \"caf\\u00e9 \\t\"\n    empty: \"\"\n"
      "policy: {ignore: [spec.value], create_only: true}\nmoved_from: old-a\n"
      "---\nkind: mem.object\nname: b\nspec: {key: b}\ndepends_on: [mem.object/a]\n";
  src.files["secret.yaml"] = "kind: mem.object\nname: s\nspec: {key: s, secret: hidden}\n";
  src.files["ref.yaml"] =
      "kind: mem.object\nname: r\nspec: {key: r, value: \"${mem.object.a.key}\"}\n";
  const std::string path = ::testing::TempDir() + "/eval-cache-test";
  std::remove(path.c_str());

  std::unique_ptr<CachedRun> first = RunWithCache(src, registry, nullptr);
  ASSERT_FALSE(first->diags.HasErrors()) << first->diags.ToString();
  Result<EvalCache::WriteStats> written =
      EvalCache::Write(path, "engine", first->decls, *first->env, nullptr);
  ASSERT_TRUE(written.ok()) << written.error().message;
  EXPECT_EQ(written->files, 1u) << "a.yaml only: a secret, a reference";

  std::unique_ptr<EvalCache> cache = EvalCache::Open(path, "engine");
  ASSERT_EQ(cache->size(), 1u);
  std::unique_ptr<CachedRun> second = RunWithCache(src, registry, cache.get());
  ASSERT_FALSE(second->diags.HasErrors()) << second->diags.ToString();
  ASSERT_FALSE(second->env->cache_mismatch());
  ASSERT_EQ(second->env->resources().size(), first->env->resources().size());
  for (size_t i = 0; i < first->env->resources().size(); ++i) {
    const EvaluatedResource& a = first->env->resources()[i];
    const EvaluatedResource& b = second->env->resources()[i];
    SCOPED_TRACE(a.decl->address);
    EXPECT_EQ(b.decl->address, a.decl->address);
    EXPECT_EQ(value::ToJson(b.spec), value::ToJson(a.spec));
    EXPECT_EQ(b.spec_hash, a.spec_hash);
    EXPECT_EQ(b.decl->target, a.decl->target);
    EXPECT_EQ(b.decl->moved_from, a.decl->moved_from);
    EXPECT_EQ(b.decl->depends_on, a.decl->depends_on);
    EXPECT_EQ(b.decl->pos.ToString(), a.decl->pos.ToString());
    EXPECT_EQ(b.decl->policy.drift, a.decl->policy.drift);
    EXPECT_EQ(b.decl->policy.ignore, a.decl->policy.ignore);
    EXPECT_EQ(b.decl->policy.create_only, a.decl->policy.create_only);
    EXPECT_EQ(b.decl->policy.set, a.decl->policy.set);
  }
  EXPECT_TRUE(second->decls.files[0].from_cache);  // a.yaml
  EXPECT_EQ(second->env->resources()[0].spec.Find("tags")->Find("big")->as_int(), 9007199254740993);
  // Nothing differs: nothing is written.
  written = EvalCache::Write(path, "engine", second->decls, *second->env, cache.get());
  ASSERT_TRUE(written.ok());
  EXPECT_FALSE(written->written);
  // Another engine, or another driftless.yaml, reads nothing of it.
  EXPECT_EQ(EvalCache::Open(path, "another engine")->size(), 0u);
  src.files["driftless.yaml"] += "  other: {provider: mem, label: x}\n";
  std::unique_ptr<CachedRun> third = RunWithCache(src, registry, cache.get());
  EXPECT_FALSE(third->decls.files[0].from_cache) << "driftless.yaml changed";
  std::remove(path.c_str());
}

}  // namespace
}  // namespace driftless::config
