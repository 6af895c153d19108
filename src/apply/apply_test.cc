// Planner and applier together, on an in-memory provider and a real SQLite state file.
#include <gtest/gtest.h>
#include <unistd.h>

#include <deque>
#include <filesystem>

#include "apply/applier.h"
#include "config/loader.h"
#include "fakes/memory_provider.h"
#include "fakes/memory_source.h"
#include "plan/planner.h"
#include "plan/render.h"
#include "plan/stored.h"
#include "state/sqlite/sqlite_state_store.h"

namespace driftless::apply {
namespace {

using plan::Action;
using value::Value;

class ApplyTest : public ::testing::Test {
 protected:
  ApplyTest() : world_(std::make_shared<test::MemoryWorld>()) {
    registry_.Register(test::NewMemoryProvider(world_));
    src_.files["driftless.yaml"] = "project: p\ntargets:\n  mem: {provider: mem}\n";
    char tmpl[] = "/tmp/driftless-apply-test.XXXXXX";
    dir_ = mkdtemp(tmpl);
    store_ = std::move(state::SqliteStateStore::Open(dir_ + "/state.db")).value();
  }
  ~ApplyTest() override { std::filesystem::remove_all(dir_); }

  // Loads, evaluates and plans the environment "default".
  plan::Plan Plan(bool destroy = false, const std::set<std::string, std::less<>>* only = nullptr) {
    Diagnostics diags;
    decls_ =
        std::make_unique<config::Declarations>(config::LoadDeclarations(src_, registry_, diags));
    EXPECT_FALSE(diags.HasErrors()) << diags.ToString();
    prior_ = std::move(*plan::ReadPriorState(*store_, *store_->GetOrCreateEnvironment("default")));
    config::EvalOptions o;
    o.salt = prior_.environment.salt;
    o.secret = [this](const std::string&) -> std::optional<std::string> { return secret_; };
    o.applied_attrs = [this](const std::string& address, const std::string& hash) -> const Value* {
      // While evaluating, from the store; while applying, from the rows the plan read.
      std::optional<state::ResourceState> single;
      const state::ResourceState* found = nullptr;
      for (const auto& r : prior_.resources)
        if (r.address == address) found = &r;
      if (found == nullptr && evaluating_) {
        single = *store_->GetResource("default", address);
        if (single) found = &*single;
      }
      if (found == nullptr || found->spec_hash != hash) return nullptr;
      attrs_cache_.push_back(plan::DecodeStored(found->attrs_json)->attrs);
      return &attrs_cache_.back();
    };
    evaluating_ = true;
    env_ = config::Environment::Evaluate(*decls_, registry_, src_, o, diags);
    evaluating_ = false;
    EXPECT_FALSE(diags.HasErrors()) << diags.ToString();
    plan::PlanOptions po;
    po.destroy = destroy;
    po.only = only;
    po.lean_creates = lean_;
    Result<plan::Plan> p = plan::MakePlan(*env_, prior_, po);
    EXPECT_TRUE(p.ok()) << (p.ok() ? "" : p.error().message);
    return std::move(*p);
  }

  ApplyResult Apply(const plan::Plan& p) {
    Result<state::Lock> lock = store_->AcquireLock("default", CurrentIdentity(), "apply", 0);
    EXPECT_TRUE(lock.ok());
    ApplyOptions options;
    options.parallelism = 4;
    Result<ApplyResult> r = apply::Apply(*env_, p, *store_, *lock, options);
    EXPECT_TRUE(store_->ReleaseLock(*lock).ok());
    EXPECT_TRUE(r.ok());
    return *r;
  }

  const plan::Change& ChangeOf(const plan::Plan& p, const std::string& address) {
    for (const auto& c : p.changes)
      if (c.address == address) return c;
    ADD_FAILURE() << "no change for " << address;
    return p.changes.front();
  }

  Value World(const std::string& key) {
    std::lock_guard<std::mutex> g(world_->mu);
    auto it = world_->objects.find(key);
    return it == world_->objects.end() ? Value() : it->second;
  }

  std::shared_ptr<test::MemoryWorld> world_;
  provider::Registry registry_;
  test::MemorySource src_;
  std::string dir_;
  std::unique_ptr<state::SqliteStateStore> store_;
  std::unique_ptr<config::Declarations> decls_;
  std::unique_ptr<config::Environment> env_;
  plan::PriorState prior_;
  bool evaluating_ = false;
  bool lean_ = false;  // PlanOptions::lean_creates
  std::deque<Value> attrs_cache_;
  std::optional<std::string> secret_ = "s3cret";
};

TEST_F(ApplyTest, CreateThenNothingToDo) {
  src_.files["r.yaml"] = "kind: mem.object\nname: a\nspec: {key: a, value: hello}\n";
  plan::Plan p = Plan();
  EXPECT_EQ(ChangeOf(p, "mem.object/a").action, Action::kCreate);
  ApplyResult r = Apply(p);
  EXPECT_EQ(r.status, "succeeded");
  EXPECT_EQ(World("a").Find("value")->as_string(), "hello");
  EXPECT_FALSE(Plan().HasChanges());
}

TEST_F(ApplyTest, APlanOfManyChangesIsRenderedInPiecesThatMakeTheWholeText) {
  std::string docs;
  for (int i = 0; i < 2000; ++i) {
    docs += "---\nkind: mem.object\nname: o" + std::to_string(i) + "\nspec: {key: o" +
            std::to_string(i) + ", value: " + std::string(40, 'v') + "}\n";
  }
  src_.files["r.yaml"] = docs;
  plan::Plan p = Plan();
  ASSERT_EQ(p.changes.size(), 2000u);
  plan::RenderOptions ro;
  std::vector<std::string> pieces;
  plan::RenderPlanTo(p, ro, [&pieces](std::string_view s) { pieces.emplace_back(s); });
  std::string whole;
  for (const auto& s : pieces) whole += s;
  EXPECT_EQ(whole, plan::RenderPlan(p, ro));
  EXPECT_GT(pieces.size(), 1u);  // the text is far over 64 KiB
  for (const auto& s : pieces) EXPECT_LT(s.size(), 80u * 1024);
  EXPECT_NE(whole.find("+ mem.object/o1999"), std::string::npos);
  EXPECT_NE(whole.find("Plan: 2000 to create"), std::string::npos);
  // Applied, its intents are recorded a batch at a time, in the plan's order.
  ApplyResult r = Apply(p);
  ASSERT_EQ(r.status, "succeeded");
  Result<std::optional<state::ApplyRecord>> rec = store_->GetApply(r.apply_id);
  ASSERT_TRUE(rec.ok() && rec->has_value());
  ASSERT_EQ((*rec)->changes.size(), 2000u);
  for (size_t i = 0; i < 2000; ++i) {
    EXPECT_EQ((*rec)->changes[i].address, p.changes[i].address);
    EXPECT_EQ((*rec)->changes[i].status, "done");
  }
}

TEST_F(ApplyTest, DriftIsHealed) {
  src_.files["r.yaml"] = "kind: mem.object\nname: a\nspec: {key: a, value: hello}\n";
  Apply(Plan());
  world_->objects["a"].Set("value", Value::String("hacked"));
  plan::Plan p = Plan();
  const plan::Change& c = ChangeOf(p, "mem.object/a");
  EXPECT_EQ(c.action, Action::kHeal);
  EXPECT_TRUE(c.drift);
  EXPECT_NE(c.drift_diff.find("-value: hello\n+value: hacked"), std::string::npos) << c.drift_diff;
  Apply(p);
  EXPECT_EQ(World("a").Find("value")->as_string(), "hello");
  // Deleted by hand: healed by creating it again.
  world_->objects.erase("a");
  EXPECT_EQ(ChangeOf(Plan(), "mem.object/a").action, Action::kHeal);
}

// A target that reads in batches gets one ReadMany for the whole plan (new, unchanged, drifted
// and deleted-by-hand objects alike, with the same outcome as reading them one by one), except
// for resources whose drift is ignored; a plan of a single resource reads it with Read.
TEST_F(ApplyTest, BatchingTargetsReadAPlanWithOneReadMany) {
  world_->batches = true;
  src_.files["r.yaml"] =
      "kind: mem.object\nname: a\nspec: {key: a, value: hello}\n---\n"
      "kind: mem.object\nname: b\nspec: {key: b, value: hello}\n---\n"
      "kind: mem.object\nname: c\nspec: {key: c, value: hello}\n---\n"
      "kind: mem.object\nname: i\nspec: {key: i}\npolicy: {drift: ignore}\n";
  plan::Plan created = Plan();
  EXPECT_EQ(created.Count(Action::kCreate), 4u);
  EXPECT_EQ(world_->batch_reads, 1);
  EXPECT_EQ(world_->batched, 4u);
  EXPECT_EQ(world_->reads, 0);
  Apply(created);
  world_->objects["a"].Set("value", Value::String("hacked"));
  world_->objects.erase("b");
  world_->objects["i"].Set("value", Value::String("ignored"));
  world_->batch_reads = world_->reads = 0;
  world_->batched = 0;
  plan::Plan p = Plan();
  EXPECT_EQ(world_->batch_reads, 1);
  EXPECT_EQ(world_->batched, 3u) << "i's drift is ignored: not read";
  EXPECT_EQ(world_->reads, 0) << "PlanDeclared reuses what the batch read";
  EXPECT_EQ(ChangeOf(p, "mem.object/a").action, Action::kHeal);
  EXPECT_NE(ChangeOf(p, "mem.object/a").drift_diff.find("+value: hacked"), std::string::npos);
  EXPECT_EQ(ChangeOf(p, "mem.object/b").action, Action::kHeal);
  EXPECT_EQ(ChangeOf(p, "mem.object/b").reason, "deleted outside driftless");
  EXPECT_EQ(p.unchanged, 2u);
  // The same plan, read one object at a time.
  world_->batches = false;
  plan::Plan single = Plan();
  EXPECT_EQ(plan::PlanRecordText(single), plan::PlanRecordText(p));
  world_->batches = true;
  world_->batch_reads = world_->reads = 0;
  const std::set<std::string, std::less<>> only = {"mem.object/a"};
  EXPECT_EQ(ChangeOf(Plan(false, &only), "mem.object/a").action, Action::kHeal);
  EXPECT_EQ(world_->batch_reads, 0);
  EXPECT_EQ(world_->reads, 2) << "one read to find it unchanged or not, one to compare";
}

TEST_F(ApplyTest, ForceNewFieldReplacesAndRemovalDeletes) {
  src_.files["r.yaml"] = "kind: mem.object\nname: a\nspec: {key: a, value: x}\n";
  Apply(Plan());
  src_.files["r.yaml"] = "kind: mem.object\nname: a\nspec: {key: a2, value: x}\n";
  plan::Plan p = Plan();
  EXPECT_EQ(ChangeOf(p, "mem.object/a").action, Action::kReplace);
  Apply(p);
  EXPECT_TRUE(World("a").is_null());
  EXPECT_FALSE(World("a2").is_null());
  src_.files["r.yaml"] = "";
  p = Plan();
  EXPECT_EQ(ChangeOf(p, "mem.object/a").action, Action::kDelete);
  Apply(p);
  EXPECT_TRUE(World("a2").is_null());
  EXPECT_TRUE(store_->ListResources("default")->empty());
}

TEST_F(ApplyTest, PreventDestroyBlocksDeleteAndReplace) {
  src_.files["r.yaml"] =
      "kind: mem.object\nname: a\nspec: {key: a}\npolicy: {prevent_destroy: true}\n";
  Apply(Plan());
  src_.files["r.yaml"] =
      "kind: mem.object\nname: a\nspec: {key: b}\npolicy: {prevent_destroy: true}\n";
  EXPECT_TRUE(Plan().problems.HasErrors());
  src_.files["r.yaml"] = "";
  plan::Plan p = Plan();
  ASSERT_TRUE(p.problems.HasErrors());
  EXPECT_NE(p.problems.ToString().find("mem.object/a has policy.prevent_destroy"),
            std::string::npos);
}

TEST_F(ApplyTest, ComputedReferencesResolveDuringApply) {
  src_.files["r.yaml"] =
      "kind: mem.object\nname: a\nspec: {key: a, value: hello}\n---\n"
      "kind: mem.object\nname: b\nspec: {key: b, value: \"len=${mem.object.a.length}\"}\n";
  plan::Plan p = Plan();
  EXPECT_NE(ChangeOf(p, "mem.object/b").diff.find("(known after apply)"), std::string::npos);
  Apply(p);
  EXPECT_EQ(World("b").Find("value")->as_string(), "len=5");
  EXPECT_FALSE(Plan().HasChanges());  // the reference resolves from state now
  src_.files["r.yaml"] =
      "kind: mem.object\nname: a\nspec: {key: a, value: hello world}\n---\n"
      "kind: mem.object\nname: b\nspec: {key: b, value: \"len=${mem.object.a.length}\"}\n";
  Apply(Plan());
  EXPECT_EQ(World("b").Find("value")->as_string(), "len=11");
}

TEST_F(ApplyTest, UnchangedDependencyOfAReevaluatedSpecIsReadFromState) {
  // b holds an unknown at plan time (c changes); apply evaluates it again and reads the
  // attributes of a, which does not change, from the rows the plan read.
  src_.files["r.yaml"] =
      "kind: mem.object\nname: a\nspec: {key: a, value: hello}\n---\n"
      "kind: mem.object\nname: b\n"
      "spec: {key: b, value: \"${mem.object.a.length}-${mem.object.c.length}\"}\n---\n"
      "kind: mem.object\nname: c\nspec: {key: c, value: x}\n";
  Apply(Plan());
  EXPECT_EQ(World("b").Find("value")->as_string(), "5-1");
  src_.files["r.yaml"] =
      "kind: mem.object\nname: a\nspec: {key: a, value: hello}\n---\n"
      "kind: mem.object\nname: b\n"
      "spec: {key: b, value: \"${mem.object.a.length}-${mem.object.c.length}\"}\n---\n"
      "kind: mem.object\nname: c\nspec: {key: c, value: xyz}\n";
  plan::Plan p = Plan();
  EXPECT_EQ(p.Count(Action::kUpdate), 2u);
  EXPECT_EQ(p.unchanged, 1u);
  EXPECT_EQ(Apply(p).status, "succeeded");
  EXPECT_EQ(World("b").Find("value")->as_string(), "5-3");
  EXPECT_FALSE(Plan().HasChanges());
}

TEST_F(ApplyTest, HistoryKeepsThePlansDecisionsAndEachDiffOnce) {
  src_.files["r.yaml"] =
      "kind: mem.object\nname: a\nspec: {key: a, value: hello}\n---\n"
      "kind: mem.object\nname: s\nspec: {key: s, secret: \"${secret.X}\"}\n";
  ApplyResult first = Apply(Plan());
  // Now: a changes, s stays, v is adopted with a warning-free plan.
  world_->objects["v"] = Value::MakeObject({{"key", Value::String("v")}});
  src_.files["r.yaml"] =
      "kind: mem.object\nname: a\nspec: {key: a, value: \"a \\\"quoted\\\" \\u00e9\"}\n---\n"
      "kind: mem.object\nname: s\nspec: {key: s, secret: \"${secret.X}\"}\n---\n"
      "kind: mem.object\nname: v\nspec: {key: v, value: x}\npolicy: {adopt: true}\n";
  plan::Plan p = Plan();
  ApplyResult second = Apply(p);
  ASSERT_EQ(second.status, "succeeded");
  Result<std::optional<state::ApplyRecord>> rec = store_->GetApply(second.apply_id);
  ASSERT_TRUE(rec.ok() && rec->has_value());
  Result<Value> text = value::ParseJson((*rec)->plan_json);
  ASSERT_TRUE(text.ok()) << (*rec)->plan_json;
  const Value head = plan::PlanToJson(p);
  for (const char* k : {"environment", "plan_hash", "summary", "state_serial", "steps"}) {
    EXPECT_EQ(*text->Find(k), *head.Find(k)) << k;
  }
  // The changes that were made, with what was decided; no-ops are counted in the summary only.
  const Value::List& changes = text->Find("changes")->as_list();
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_EQ(changes[0].Find("address")->as_string(), "mem.object/a");
  EXPECT_EQ(changes[0].Find("action")->as_string(), "update");
  EXPECT_EQ(changes[0].Find("reason")->as_string(), "declaration changed");
  EXPECT_EQ(changes[0].Find("diff"), nullptr);
  EXPECT_EQ(changes[1].Find("address")->as_string(), "mem.object/v");
  EXPECT_TRUE(changes[1].Find("adopt")->as_bool());
  // Each diff is in its change record, once.
  ASSERT_EQ((*rec)->changes.size(), 2u);
  EXPECT_EQ((*rec)->changes[0].diff, ChangeOf(p, "mem.object/a").diff);
  EXPECT_NE((*rec)->changes[0].diff.find("quoted"), std::string::npos);
  EXPECT_EQ((*rec)->plan_json.find("hello"), std::string::npos);
  (void)first;
}

TEST_F(ApplyTest, APlanReadBackFromItsJsonIsTheSamePlan) {
  src_.files["r.yaml"] =
      "kind: mem.object\nname: a\nspec: {key: a, value: hello}\n---\n"
      "kind: mem.object\nname: b\nspec: {key: b, value: orig}\n";
  ASSERT_EQ(Apply(Plan()).status, "succeeded");
  // A drift, an update, an adoption and an unchanged resource in one plan.
  world_->objects["b"] =
      Value::MakeObject({{"key", Value::String("b")}, {"value", Value::String("by hand")}});
  world_->objects["v"] = Value::MakeObject({{"key", Value::String("v")}});
  src_.files["r.yaml"] =
      "kind: mem.object\nname: a\nspec: {key: a, value: changed}\n---\n"
      "kind: mem.object\nname: b\nspec: {key: b, value: orig}\n---\n"
      "kind: mem.object\nname: c\nspec: {key: c}\n---\n"
      "kind: mem.object\nname: v\nspec: {key: v, value: x}\npolicy: {adopt: true}\n";
  const plan::Plan p = Plan();
  ASSERT_GT(p.DriftCount(), 0u);
  const Value json = plan::PlanToJson(p);
  Result<plan::Plan> back = plan::PlanFromJson(json);
  ASSERT_TRUE(back.ok()) << back.error().message;
  // Everything PlanToJson writes comes back: the JSON again, the hash, the text, the counts.
  EXPECT_EQ(value::ToJson(plan::PlanToJson(*back)), value::ToJson(json));
  EXPECT_EQ(back->Hash(), p.Hash());
  EXPECT_EQ(plan::RenderPlan(*back, plan::RenderOptions{}),
            plan::RenderPlan(p, plan::RenderOptions{}));
  EXPECT_EQ(back->Summary(), p.Summary());
}

TEST_F(ApplyTest, ALeanPlanShowsHashesAndRecordsWhatTheWholePlanDoes) {
  src_.files["r.yaml"] =
      "kind: mem.object\nname: a\nspec: {key: a, value: hello}\n---\n"
      "kind: mem.object\nname: d\nspec: {key: d}\n";
  ASSERT_EQ(Apply(Plan()).status, "succeeded");
  // Plain creates first, between the other changes and last (one with a secret, one that
  // depends on another), a create that adopts an existing object (live known), a paused create
  // (a no-op with a diff), an update, a delete and nothing unchanged.
  world_->objects["v"] = Value::MakeObject({{"key", Value::String("v")}});
  src_.files["r.yaml"] =
      "kind: mem.object\nname: \"0\"\nspec: {key: \"0\"}\n---\n"
      "kind: mem.object\nname: a\nspec: {key: a, value: changed}\n---\n"
      "kind: mem.object\nname: b\nspec: {key: b, value: new, tags: {x: \"1\", y: \"2\"}}\n---\n"
      "kind: mem.object\nname: s\nspec: {key: s, secret: \"${secret.X}\"}\n---\n"
      "kind: mem.object\nname: p\nspec: {key: p}\npolicy: {paused: true}\n---\n"
      "kind: mem.object\nname: v\nspec: {key: v, value: x}\npolicy: {adopt: true}\n---\n"
      "kind: mem.object\nname: z\ndepends_on: [mem.object/b]\nspec: {key: z}\n";
  const plan::Plan whole = Plan();
  ASSERT_TRUE(whole.creates.empty());
  ASSERT_EQ(whole.changes.size(), 8u);
  lean_ = true;
  plan::Plan lean = Plan();
  // The plain creates are held as indices alone, in address order; the adopting create, the
  // paused one, the update and the delete are Changes.
  std::vector<std::string> plain;
  for (const plan::Plan::Create& c : lean.creates)
    plain.push_back(env_->resources()[c.index].decl->address);
  EXPECT_EQ(plain, (std::vector<std::string>{"mem.object/0", "mem.object/b", "mem.object/s",
                                             "mem.object/z"}));
  std::vector<std::string> held;
  for (const plan::Change& c : lean.changes) held.push_back(c.address);
  EXPECT_EQ(held, (std::vector<std::string>{"mem.object/a", "mem.object/d", "mem.object/p",
                                            "mem.object/v"}));
  // Every change, in the whole plan's order and exactly as it has them.
  std::vector<plan::Change> visited;
  lean.ForEachChange([&visited](const plan::Change& c) { visited.push_back(c); });
  ASSERT_EQ(visited.size(), whole.changes.size());
  for (size_t i = 0; i < whole.changes.size(); ++i) {
    const plan::Change& w = whole.changes[i];
    const plan::Change& l = visited[i];
    EXPECT_EQ(l.address, w.address);
    EXPECT_EQ(l.kind, w.kind);
    EXPECT_EQ(l.name, w.name);
    EXPECT_EQ(l.target, w.target);
    EXPECT_EQ(l.action, w.action) << w.address;
    EXPECT_EQ(l.reason, w.reason) << w.address;
    EXPECT_EQ(l.planned, w.planned) << w.address;
    EXPECT_EQ(l.live, w.live) << w.address;
    EXPECT_EQ(l.diff, w.diff) << w.address;
    EXPECT_EQ(l.depends_on, w.depends_on) << w.address;
    EXPECT_EQ(l.spec_hash, w.spec_hash) << w.address;
    EXPECT_EQ(l.index, w.index) << w.address;
  }
  EXPECT_EQ(ChangeOf(whole, "mem.object/z").depends_on, std::vector<std::string>{"mem.object/b"});
  // The same counts, hash, text and JSON as the whole plan.
  EXPECT_EQ(lean.Summary(), whole.Summary());
  EXPECT_EQ(lean.Count(Action::kCreate), 5u);
  EXPECT_TRUE(lean.HasChanges());
  EXPECT_EQ(lean.Hash(), whole.Hash());
  EXPECT_EQ(plan::RenderPlan(lean, plan::RenderOptions{}),
            plan::RenderPlan(whole, plan::RenderOptions{}));
  EXPECT_EQ(value::ToJson(plan::PlanToJson(lean)), value::ToJson(plan::PlanToJson(whole)));
  EXPECT_EQ(plan::PlanRecordText(lean), plan::PlanRecordText(whole));
  plan::Plan completed = lean;
  completed.CompleteAll();
  EXPECT_TRUE(completed.creates.empty());
  EXPECT_FALSE(completed.make_create);
  EXPECT_EQ(value::ToJson(plan::PlanToJson(completed)), value::ToJson(plan::PlanToJson(whole)));
  // History gets each change's diff as the whole plan has it, in the same order.
  ApplyResult r = Apply(lean);
  ASSERT_EQ(r.status, "succeeded");
  Result<std::optional<state::ApplyRecord>> rec = store_->GetApply(r.apply_id);
  ASSERT_TRUE(rec.ok() && rec->has_value());
  std::vector<std::string> recorded;
  for (const state::ChangeRecord& c : (*rec)->changes) {
    recorded.push_back(c.address);
    EXPECT_EQ(c.diff, ChangeOf(whole, c.address).diff) << c.address;
    EXPECT_FALSE(c.diff.empty()) << c.address;
  }
  EXPECT_EQ(recorded, (std::vector<std::string>{"mem.object/0", "mem.object/a", "mem.object/b",
                                                "mem.object/d", "mem.object/s", "mem.object/v",
                                                "mem.object/z"}));
  EXPECT_EQ(World("b").Find("value")->as_string(), "new");
  EXPECT_EQ(World("z").Find("key")->as_string(), "z");
  EXPECT_TRUE(World("d").is_null());
}

TEST_F(ApplyTest, FailureSkipsDependentsOnly) {
  src_.files["r.yaml"] =
      "kind: mem.object\nname: a\nspec: {key: a}\n---\n"
      "kind: mem.object\nname: b\ndepends_on: [mem.object/a]\nspec: {key: b}\n---\n"
      "kind: mem.object\nname: c\nspec: {key: c}\n";
  world_->fail_keys.insert("a");
  ApplyResult r = Apply(Plan());
  EXPECT_EQ(r.status, "failed");
  EXPECT_EQ(r.failed, 1u);
  EXPECT_EQ(r.skipped, 1u);
  EXPECT_EQ(r.done, 1u);
  EXPECT_FALSE(World("c").is_null());
  EXPECT_TRUE(World("b").is_null());
  auto history = store_->GetApply(r.apply_id);
  ASSERT_TRUE(history.ok() && history->has_value());
  for (const auto& c : (*history)->changes) {
    if (c.address == "mem.object/b") {
      EXPECT_EQ(c.status, "skipped");
      EXPECT_NE(c.error.find("depends on mem.object/a, which failed"), std::string::npos);
    }
  }
  world_->fail_keys.clear();
  plan::Plan rest = Plan();
  EXPECT_EQ(rest.Count(Action::kCreate), 2u);
  EXPECT_EQ(Apply(rest).status, "succeeded");
}

TEST_F(ApplyTest, MovedFromKeepsTheObject) {
  src_.files["r.yaml"] = "kind: mem.object\nname: old\nspec: {key: k, value: v}\n";
  Apply(Plan());
  int writes = world_->writes;
  src_.files["r.yaml"] = "kind: mem.object\nname: new\nmoved_from: old\nspec: {key: k, value: v}\n";
  plan::Plan p = Plan();
  EXPECT_EQ(ChangeOf(p, "mem.object/new").action, Action::kRecord);
  EXPECT_EQ(p.Count(Action::kDelete), 0u);
  Apply(p);
  EXPECT_EQ(world_->writes, writes);
  auto rows = *store_->ListResources("default");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].address, "mem.object/new");
}

TEST_F(ApplyTest, SecretsNeverStoredAndChangesSeen) {
  src_.files["r.yaml"] = "kind: mem.object\nname: a\nspec: {key: a, secret: \"${secret.X}\"}\n";
  plan::Plan p = Plan();
  EXPECT_EQ(ChangeOf(p, "mem.object/a").diff.find("s3cret"), std::string::npos);
  Apply(p);
  auto rows = *store_->ListResources("default");
  EXPECT_EQ(rows[0].attrs_json.find("s3cret"), std::string::npos) << rows[0].attrs_json;
  EXPECT_FALSE(Plan().HasChanges());
  secret_ = "other";
  plan::Plan changed = Plan();
  const plan::Change& c = ChangeOf(changed, "mem.object/a");
  EXPECT_EQ(c.action, Action::kUpdate);
  EXPECT_NE(c.diff.find("(sensitive value changed)"), std::string::npos) << c.diff;
}

TEST_F(ApplyTest, InterruptedCreateIsRecordedNotRepeated) {
  src_.files["r.yaml"] = "kind: mem.object\nname: a\nspec: {key: a, value: v}\n";
  plan::Plan p = Plan();
  // Simulate a crash: intents recorded, the object created, the outcome never written.
  Result<state::Lock> lock = store_->AcquireLock("default", CurrentIdentity(), "apply", 0);
  ASSERT_TRUE(lock.ok());
  state::ApplyRecord rec;
  rec.environment = "default";
  rec.status = "running";
  ASSERT_TRUE(store_->BeginApply(*lock, rec, {{"mem.object/a", "create", "pending", "", ""}}).ok());
  world_->objects["a"] = Value::MakeObject(
      {{"key", Value::String("a")}, {"value", Value::String("v")}, {"length", Value::Int(1)}});
  ASSERT_TRUE(store_->ReleaseLock(*lock).ok());
  plan::Plan again = Plan();
  EXPECT_EQ(ChangeOf(again, "mem.object/a").action, Action::kRecord);
  int writes = world_->writes;
  Apply(again);
  EXPECT_EQ(world_->writes, writes);
  EXPECT_FALSE(Plan().HasChanges());
}

TEST_F(ApplyTest, ExistingObjectNeedsAdopt) {
  world_->objects["a"] = Value::MakeObject({{"key", Value::String("a")}});
  src_.files["r.yaml"] = "kind: mem.object\nname: a\nspec: {key: a, value: v}\n";
  plan::Plan p = Plan();
  EXPECT_FALSE(ChangeOf(p, "mem.object/a").warning.empty());
  EXPECT_EQ(Apply(p).failed, 1u);
  src_.files["r.yaml"] =
      "kind: mem.object\nname: a\nspec: {key: a, value: v}\npolicy: {adopt: true}\n";
  EXPECT_EQ(Apply(Plan()).status, "succeeded");
  EXPECT_EQ(World("a").Find("value")->as_string(), "v");
}

TEST_F(ApplyTest, DestroyDeletesEverything) {
  src_.files["r.yaml"] =
      "kind: mem.object\nname: a\nspec: {key: a}\n---\n"
      "kind: mem.object\nname: b\nspec: {key: \"${mem.object.a.key}-b\"}\n";
  Apply(Plan());
  plan::Plan p = Plan(/*destroy=*/true);
  EXPECT_EQ(p.Count(Action::kDelete), 2u);
  EXPECT_EQ(Apply(p).status, "succeeded");
  EXPECT_TRUE(world_->objects.empty());
}

}  // namespace
}  // namespace driftless::apply

namespace driftless {
namespace {

// What the store records for a plan's stamps: each row's address and digest, as the row has
// them, beside the new stamp (moved out of the plan).
TEST(LiveStamps, NameTheRowsTheyWereFoundOn) {
  plan::PriorState prior;
  prior.digests.push_back({"file.file/a", "spec-a", "0123456789abcdef0123456789abcdef", "old"});
  prior.digests.push_back({"file.file/b", "spec-b", "imported", ""});
  std::vector<plan::Plan::NewStamp> stamps = {{1, "s-b"}, {0, "s-a"}};
  std::vector<state::LiveStamp> out = plan::LiveStamps(prior, stamps);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].address, "file.file/b");
  EXPECT_EQ(out[0].live_digest.str(), "imported");
  EXPECT_EQ(out[0].stamp, "s-b");
  EXPECT_EQ(out[1].address, "file.file/a");
  EXPECT_EQ(out[1].live_digest.str(), "0123456789abcdef0123456789abcdef");
  EXPECT_EQ(out[1].stamp, "s-a");
  EXPECT_TRUE(plan::LiveStamps(prior, std::span<plan::Plan::NewStamp>()).empty());
}

}  // namespace
}  // namespace driftless
