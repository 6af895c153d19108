#include "plan/planner.h"

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "plan/stored.h"
#include "value/diff.h"
#include "value/render.h"

namespace driftless::plan {

using value::Value;

namespace {

// Line diff of two attribute sets; notes a changed secret that renders the same.
std::string AttrDiff(const Value& before, const Value& after) {
  std::string a = before.is_null() ? "" : value::RenderText(before);
  std::string b = after.is_null() ? "" : value::RenderText(after);
  std::string d = value::UnifiedDiff(a, b);
  if (d.empty() && before != after) {
    // Only protected (secret) values differ: their text is "(sensitive)" on both sides.
    if (before.is_object() && after.is_object()) {
      for (const auto& [k, v] : after.as_object()) {
        const Value* old = before.Find(k);
        if (old == nullptr || *old != v) d += "~ " + k + ": (sensitive value changed)\n";
      }
    }
    if (d.empty()) d = "~ (sensitive value changed)\n";
  }
  return d;
}

// Whether the object's name (spec.name, else the resource's name) differs between the applied
// attributes and the declaration.
bool Renamed(const Value& applied, const Value& declared, const std::string& resource_name) {
  auto name = [&](const Value& v) {
    const Value* n = v.Find("name");
    return n != nullptr && n->is_string() ? n->as_string() : resource_name;
  };
  return !declared.ContainsUnknown() && name(applied) != name(declared);
}

// One per declared resource: kept small (48 bytes), there are as many as resources.
struct Work {
  const config::EvaluatedResource* er = nullptr;
  const state::ResourceState* st = nullptr;  // the whole row, read when it may have changed
  std::unique_ptr<std::string> error;        // why the plan fails, rarely
  std::unique_ptr<std::string> stamp;        // a stamp to record: read in full and found unchanged
  long row = -1;   // in PriorState::digests (maybe under moved_from), or -1
  int batch = -1;  // its live object in Batched::live (read with its target's others), or -1
  bool in_doubt = false;
  bool skip = false;     // outside PlanOptions::only
  bool compare = false;  // not known to be unchanged: compare in full
  bool plain = false;    // a plain create (Plan::Create): PlanDeclared kept no Change for it
};

// The live objects read by Target::ReadMany before the plan's threads start, for the targets
// that read in batches; Work::batch indexes `live`.
struct Batched {
  std::vector<Result<std::optional<Value>>> live;
};

bool ForceNewDiffers(const Value& prior, const Value& planned,
                     const provider::ResourceSchema& schema) {
  for (const auto& f : schema.fields) {
    if (!f.force_new) continue;
    const Value* a = prior.Find(f.name);
    const Value* b = planned.Find(f.name);
    if (a && b && !b->is_unknown() && *a != *b) return true;
  }
  return false;
}

// The common case, kept cheap: applied from this very spec, at the same address, and the live
// object still has the digest it had after that apply. Two hash comparisons; nothing is read
// from state, decoded, copied or rendered, and the plan only counts it. Sets w.compare when the
// resource may have changed.
void CheckUnchanged(config::Environment& env, Work& w, const state::ResourceDigest* d,
                    const Batched& batched, const PlanOptions& options) {
  const config::Resource& r = *w.er->decl;
  const bool same_spec = d != nullptr && !w.er->spec_hash.empty() &&
                         d->spec_hash == w.er->spec_hash && d->address == r.address;
  const bool ignore_drift = r.policy.drift == config::Policy::Drift::kIgnore;
  if (same_spec && (!options.refresh || ignore_drift)) return;  // no-op
  if (same_spec) {
    // Not read at all when the object still has the stamp it had when it was last read with
    // this digest.
    Result<provider::StampedRead> got = provider::StampedRead();
    if (w.batch >= 0) {
      // A copy: PlanDeclared uses it again when the object differs.
      const Result<std::optional<Value>>& live = batched.live[static_cast<size_t>(w.batch)];
      if (live.ok()) {
        got->live = *live;
      } else {
        got = live.error();
      }
    } else {
      // The request borrows the spec (moved there and back) rather than copying it: most
      // reads find the stamp unchanged, and the copy was most of their cost. This thread is
      // the only one that touches this resource while the plan's threads run.
      config::EvaluatedResource& er =
          env.resources()[static_cast<size_t>(w.er - env.resources().data())];
      provider::ResourceRequest req{r.kind, r.name, std::move(er.spec)};
      got = env.TargetOf(r)->ReadIfChanged(req, options.use_stamps ? d->live_stamp : std::string());
      er.spec = std::move(req.spec);
    }
    if (!got.ok()) {
      w.error = std::make_unique<std::string>(r.address + " (target " + r.target +
                                              "): " + got.error().message);
      return;
    }
    if (got->unchanged) return;  // no-op
    if (got->live) {
      std::vector<std::string> keys = ComparedKeys(w.er->spec, *env.SchemaOf(r));
      Value proj = Project(ProtectLike(std::move(*got->live), w.er->spec, env.salt()), keys,
                           r.policy.ignore);
      if (LiveDigest(proj) == d->live_digest) {  // no-op
        if (!got->stamp.empty() && got->stamp != d->live_stamp) {
          w.stamp = std::make_unique<std::string>(std::move(got->stamp));
        }
        return;
      }
    }
  }
  w.compare = true;
}

// The full comparison, for a resource CheckUnchanged did not find unchanged, into `c`; w.st is
// its whole row in state, if any.
void PlanDeclared(config::Environment& env, Work& w, Change& c, Batched& batched,
                  const PlanOptions& options) {
  const config::Resource& r = *w.er->decl;
  const provider::ResourceSchema& schema = *env.SchemaOf(r);
  const std::string& salt = env.salt();
  provider::Target* target = env.TargetOf(r);
  const bool ignore_drift = r.policy.drift == config::Policy::Drift::kIgnore;
  const std::vector<std::string> keys = ComparedKeys(w.er->spec, schema);

  StoredAttrs stored;
  if (w.st != nullptr) {
    Result<StoredAttrs> s = DecodeStored(w.st->attrs_json);
    if (!s.ok()) {
      w.error = std::make_unique<std::string>(r.address + ": " + s.error().message);
      return;
    }
    stored = std::move(*s);
  }

  // Live.
  std::optional<Value> live;
  bool read_live = options.refresh && !(w.st && ignore_drift && w.st->spec_hash == w.er->spec_hash);
  if (read_live) {
    // The live object is the one state knows when its identity is about to change (a field
    // that forces replacement) or not known yet (unknown values); else the declared one.
    provider::ResourceRequest req{r.kind, r.name, w.er->spec};
    bool as_declared = true;
    if (w.st != nullptr &&
        (w.er->spec.ContainsUnknown() || ForceNewDiffers(stored.attrs, w.er->spec, schema))) {
      req.spec = stored.attrs;
      as_declared = false;
    }
    if (!req.spec.ContainsUnknown()) {
      // Read already with the target's other objects when it was asked for as declared.
      Result<std::optional<Value>> got = as_declared && w.batch >= 0
                                             ? std::move(batched.live[static_cast<size_t>(w.batch)])
                                             : target->Read(req);
      if (got.ok() && !*got && w.st != nullptr && Renamed(stored.attrs, w.er->spec, r.name)) {
        // spec.name changed: the object is still under its old name, and an update renames it.
        got = target->Read({r.kind, r.name, stored.attrs});
      }
      if (!got.ok()) {
        w.error = std::make_unique<std::string>(r.address + " (target " + r.target +
                                                "): " + got.error().message);
        return;
      }
      live = std::move(*got);
    } else {
      live = std::nullopt;  // not identifiable yet: it will be created once its inputs are known
    }
  }
  Value live_proj;
  std::string live_digest;
  if (live) {
    live_proj = Project(ProtectLike(std::move(*live), w.er->spec, salt), keys, r.policy.ignore);
    live_digest = LiveDigest(live_proj);
  }
  if (options.lean_creates && w.st == nullptr && !r.policy.paused && live_proj.is_null()) {
    // A create of an object nobody knows, kept as its index alone: MakeCreate makes this
    // Change when the plan is read, so nothing of it is made here.
    w.plain = true;
    return;
  }
  c.index = static_cast<int>(w.er - env.resources().data());
  c.address = r.address;
  c.kind = r.kind;
  c.name = r.name;
  c.target = r.target;
  c.paused = r.policy.paused;
  c.spec_hash = w.er->spec_hash;
  const std::span<const size_t> deps = env.graph().Predecessors(static_cast<size_t>(c.index));
  c.depends_on.reserve(deps.size());
  for (size_t d : deps) c.depends_on.push_back(env.resources()[d].decl->address);
  c.planned = Project(value::Protect(w.er->spec, salt), keys, r.policy.ignore);
  if (live) c.live = live_proj;
  // Does the live object already equal the declaration (on the fields it reports)?
  auto live_matches_declared = [&] {
    if (!live_proj.is_object() || c.planned.ContainsUnknown()) return false;
    for (const auto& [k, v] : c.planned.as_object()) {
      const Value* l = live_proj.Find(k);
      if (l == nullptr || *l != v) return false;
    }
    return true;
  };

  if (w.st == nullptr) {
    if (read_live && live_proj.is_object()) {
      if (live_matches_declared() && (w.in_doubt || r.policy.adopt)) {
        c.action = Action::kRecord;
        c.reason =
            w.in_doubt ? "already done by an interrupted apply" : "exists and matches (adopt)";
      } else {
        c.action = Action::kCreate;
        c.adopt = w.in_doubt || r.policy.adopt;
        c.reason = w.in_doubt ? "partly done by an interrupted apply" : "exists, not yet managed";
        if (!c.adopt)
          c.warning = "the object already exists; set policy.adopt: true to take it over";
      }
    } else {
      c.action = Action::kCreate;
      c.reason = "not yet created";
    }
    c.diff = AttrDiff(c.live, c.planned);
    if (r.policy.paused && c.action != Action::kNoop) {
      c.reason = "paused (would " + std::string(ActionName(c.action)) + ")";
      c.action = Action::kNoop;
    }
    return;
  }

  c.prior = Project(stored.attrs, keys, r.policy.ignore);
  c.applied_attrs = stored.attrs;
  if (w.st->address != r.address) c.prior_address = w.st->address;
  const bool spec_changed = w.st->spec_hash != w.er->spec_hash || w.er->spec_hash.empty();
  const bool live_missing = read_live && !live_proj.is_object();
  const bool drifted = read_live && !live_missing && live_digest != w.st->live_digest;
  if (live_missing) {
    c.drift = true;
    c.drift_diff = AttrDiff(c.prior, Value());
  } else if (drifted) {
    c.drift = true;
    c.drift_diff = AttrDiff(c.prior, c.live);
  }
  const Value& now = read_live ? c.live : c.prior;
  if (spec_changed) {
    if (live_missing) {
      c.action = Action::kCreate;
      c.reason = "deleted outside driftless; declaration changed";
    } else if (r.policy.create_only) {
      c.action = Action::kNoop;
      c.reason = "create_only: changes are not applied";
    } else if (ForceNewDiffers(stored.attrs, w.er->spec, schema)) {
      c.action = Action::kReplace;
      c.reason = "a field that forces replacement changed";
    } else if (read_live && live_matches_declared()) {
      c.action = Action::kRecord;
      c.reason = "declaration already live";
    } else {
      c.action = Action::kUpdate;
      c.reason = w.st->spec_hash == kImportedSpecHash
                     ? "declaration differs from the imported object"
                     : "declaration changed";
    }
    if (w.st->address != r.address) c.reason += " (moved from " + w.st->address + ")";
    c.diff = AttrDiff(c.action == Action::kCreate ? Value() : now, c.planned);
  } else if (live_missing) {
    c.action = Action::kHeal;
    c.reason = "deleted outside driftless";
    c.diff = AttrDiff(Value(), c.planned);
  } else if (drifted) {
    if (r.policy.drift == config::Policy::Drift::kIgnore || r.policy.create_only) {
      c.action = Action::kNoop;
      c.reason = "drift ignored by policy";
    } else {
      c.action = Action::kHeal;
      c.reason = "modified outside driftless";
    }
    c.diff = AttrDiff(now, c.planned);
  } else if (w.st->address != r.address) {
    c.action = Action::kRecord;
    c.reason = "moved from " + w.st->address;
  }
  if (w.in_doubt && (c.drift || c.action == Action::kRecord)) {
    // The change was started by an apply that was killed: what differs from state may be its
    // own work, not someone else's. Not drift.
    c.drift = false;
    c.drift_diff.clear();
    c.reason = c.action == Action::kRecord ? "already done by an interrupted apply"
                                           : c.reason + " (after an interrupted apply)";
    if (c.action == Action::kHeal && live_missing) c.reason = "missing after an interrupted apply";
  }
  if ((c.action == Action::kUpdate || c.action == Action::kHeal) && c.live.is_object()) {
    c.operation = target->UpdateOperation(r.kind, c.live, c.planned);
  }
  if (r.policy.paused && c.action != Action::kNoop) {
    c.reason = "paused (would " + std::string(ActionName(c.action)) +
               (c.operation.empty() ? "" : ": " + c.operation) + ")";
    c.action = Action::kNoop;
    c.operation.clear();
  }
}

// A plain create's Change (Plan::Create), as PlanDeclared makes it: a declared resource that
// neither state nor its target knows, not paused. With `whole`, its planned value and diff too.
void MakeCreate(const config::Environment& env, size_t index, bool whole, Change& c) {
  const config::EvaluatedResource& er = env.resources()[index];
  const config::Resource& r = *er.decl;
  c.index = static_cast<int>(index);
  c.address = r.address;
  c.kind = r.kind;
  c.name = r.name;
  c.target = r.target;
  c.spec_hash = er.spec_hash;
  const std::span<const size_t> deps = env.graph().Predecessors(index);
  c.depends_on.reserve(deps.size());
  for (size_t d : deps) c.depends_on.push_back(env.resources()[d].decl->address);
  c.action = Action::kCreate;
  c.reason = "not yet created";
  if (!whole) return;
  const std::vector<std::string> keys = ComparedKeys(er.spec, *env.SchemaOf(r));
  c.planned = Project(value::Protect(er.spec, env.salt()), keys, r.policy.ignore);
  c.diff = AttrDiff(Value(), c.planned);
}

// Runs fn(i) for i in [0, n) on up to `parallelism` threads (live reads are the cost of a plan).
template <typename Fn>
void ParallelFor(size_t n, int parallelism, const Fn& fn) {
  std::atomic<size_t> next{0};
  auto worker = [&] {
    // What targets keep for these reads (the file provider's open folders) ends with them.
    provider::ReadScope scope;
    while (true) {
      size_t i = next.fetch_add(1);
      if (i >= n) return;
      fn(i);
    }
  };
  int threads = std::max(1, std::min<int>(parallelism, static_cast<int>(n / 64 + 1)));
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
}

// Reads, for each target that reads in batches (Target::ReadsInBatches), the live objects of
// the resources the plan will read, with one ReadMany: those not skipped whose spec is known and
// whose drift is not ignored with an unchanged spec. A target with a single such resource (a
// watch's check) reads it on its own, as the other targets do.
void ReadInBatches(config::Environment& env, std::vector<Work>& work,
                   const std::vector<state::ResourceDigest>& digests, Batched& batched) {
  std::map<provider::Target*, std::vector<size_t>> by_target;  // indices in `work`
  for (size_t i = 0; i < work.size(); ++i) {
    const Work& w = work[i];
    if (w.skip || w.er->spec.ContainsUnknown()) continue;
    const config::Resource& r = *w.er->decl;
    const state::ResourceDigest* d = w.row >= 0 ? &digests[static_cast<size_t>(w.row)] : nullptr;
    if (d != nullptr && r.policy.drift == config::Policy::Drift::kIgnore &&
        d->spec_hash == w.er->spec_hash && !w.er->spec_hash.empty()) {
      continue;  // not read at all
    }
    provider::Target* target = env.TargetOf(r);
    if (!target->ReadsInBatches()) continue;
    by_target[target].push_back(i);
  }
  for (auto& [target, indices] : by_target) {
    if (indices.size() < 2) continue;
    std::vector<provider::ResourceRequest> reqs;
    reqs.reserve(indices.size());
    for (size_t i : indices) {
      const config::Resource& r = *work[i].er->decl;
      reqs.push_back({r.kind, r.name, work[i].er->spec});
    }
    std::vector<Result<std::optional<Value>>> live = target->ReadMany(reqs);
    if (live.size() != reqs.size()) continue;  // not this target's to decide: read one by one
    for (size_t k = 0; k < indices.size(); ++k) {
      work[indices[k]].batch = static_cast<int>(batched.live.size());
      batched.live.push_back(std::move(live[k]));
    }
  }
}

}  // namespace

Result<PriorState> ReadPriorState(state::StateStore& store, state::Environment environment,
                                  const std::vector<std::string>* addresses) {
  PriorState prior;
  prior.environment = std::move(environment);
  const std::string& env = prior.environment.name;
  auto digests = addresses != nullptr ? store.GetResourceDigests(env, *addresses)
                                      : store.ListResourceDigests(env);
  if (!digests.ok()) return digests.error();
  prior.digests = std::move(*digests);
  auto pending = store.PendingChanges(env);
  if (!pending.ok()) return pending.error();
  prior.pending = std::move(*pending);
  prior.read = [&store, env](const std::vector<std::string>& addresses) {
    return store.GetResources(env, addresses);
  };
  return prior;
}

Result<Plan> MakePlan(config::Environment& env, PriorState& prior, const PlanOptions& options) {
  Plan plan;
  plan.environment = env.name();
  plan.revision = env.decls().revision;
  plan.decl_hash = env.hash();
  plan.state_serial = prior.environment.serial;
  plan.destroy = options.destroy;

  // State rows are sorted by address: binary search instead of a map of 100,000 nodes.
  const std::vector<state::ResourceDigest>& digests = prior.digests;
  auto find_row = [&digests](std::string_view address) -> long {
    auto it = std::lower_bound(
        digests.begin(), digests.end(), address,
        [](const state::ResourceDigest& r, std::string_view a) { return r.address < a; });
    return it != digests.end() && it->address == address ? it - digests.begin() : -1;
  };
  std::set<std::string_view> in_doubt;
  for (const auto& p : prior.pending) in_doubt.insert(p.address);
  std::vector<char> claimed(digests.size(), 0);  // state rows matched by a declaration

  std::vector<Work> work;
  Batched batched;
  if (!options.destroy) {
    work.resize(env.resources().size());
    for (size_t i = 0; i < env.resources().size(); ++i) {
      const config::EvaluatedResource& er = env.resources()[i];
      Work& w = work[i];
      w.er = &er;
      w.skip = options.only != nullptr;  // cleared below for the planned ones
    }
    if (options.only != nullptr) {
      // Looked up by address: a set lookup per resource was most of a watch's check among
      // 100,000 resources.
      for (const std::string& address : *options.only) {
        int i = env.IndexOf(address);
        if (i >= 0) work[static_cast<size_t>(i)].skip = false;
      }
    }
    for (size_t i = 0; i < env.resources().size(); ++i) {
      const config::EvaluatedResource& er = env.resources()[i];
      Work& w = work[i];
      if (!in_doubt.empty()) w.in_doubt = in_doubt.count(er.decl->address) > 0;
      // A skipped resource's own row is neither planned nor deleted (deletes are of `only`
      // too), so it need not be claimed; a row it moved from, which may be in `only`, must.
      if (w.skip && er.decl->moved_from.empty()) continue;
      w.row = find_row(er.decl->address);
      if (w.row < 0 && !er.decl->moved_from.empty()) {
        w.row = find_row(er.decl->kind + "/" + er.decl->moved_from);
      }
      if (w.row >= 0) claimed[static_cast<size_t>(w.row)] = 1;
    }
    if (options.refresh) ReadInBatches(env, work, digests, batched);
    // A plan of a few resources (a watch's check) runs on one thread over just those: among
    // 100,000 resources, threads started for the skipped ones cost more than the reads.
    std::vector<size_t> planned;
    if (options.only != nullptr) {
      for (size_t i = 0; i < work.size(); ++i) {
        if (!work[i].skip) planned.push_back(i);
      }
    }
    const size_t n = options.only != nullptr ? planned.size() : work.size();
    ParallelFor(n, options.parallelism, [&](size_t k) {
      Work& w = work[options.only != nullptr ? planned[k] : k];
      if (w.skip) return;
      CheckUnchanged(env, w, w.row >= 0 ? &digests[static_cast<size_t>(w.row)] : nullptr, batched,
                     options);
    });
    // Sized exactly: doubling a vector of 10,000 stamps held both copies at the plan's peak.
    size_t stamps = 0;
    for (const Work& w : work) stamps += w.stamp != nullptr;
    plan.stamps.reserve(stamps);
    for (auto& w : work) {
      if (w.error) return MakeError(*w.error);
      if (w.stamp) {
        plan.stamps.push_back({static_cast<size_t>(w.row), std::move(*w.stamp)});
        w.stamp.reset();
      }
    }
  }

  // Whole rows, attributes included, only where they are needed: resources that may have
  // changed, resources to delete, and dependencies of specs that hold unknowns (apply evaluates
  // those again with the attributes of their dependencies).
  std::vector<std::string> wanted;
  std::vector<size_t> compared;  // indices in `work`
  for (size_t i = 0; i < work.size(); ++i) {
    const Work& w = work[i];
    if (!w.compare) continue;
    compared.push_back(i);
    if (w.row >= 0) wanted.push_back(digests[static_cast<size_t>(w.row)].address);
  }
  for (size_t row = 0; row < digests.size(); ++row) {
    if (claimed[row]) continue;
    if (options.only != nullptr && options.only->count(digests[row].address) == 0) continue;
    wanted.push_back(digests[row].address);  // to delete
  }
  for (const Work& w : work) {
    if (!w.er->spec_hash.empty()) continue;
    for (size_t d : env.graph().Predecessors(static_cast<size_t>(w.er - env.resources().data()))) {
      const std::string& address = env.resources()[d].decl->address;
      if (find_row(address) >= 0) wanted.push_back(address);
    }
  }
  prior.resources.clear();
  if (!wanted.empty()) {
    if (!prior.read) return MakeError("internal error: the plan cannot read state rows");
    Result<std::vector<state::ResourceState>> read = prior.read(wanted);
    if (!read.ok()) return read.error();
    prior.resources = std::move(*read);
  }
  std::vector<std::string>().swap(wanted);
  // A row listed a moment ago but gone now was removed by another process (which held the
  // environment's lock): the plan would mix two states.
  auto full_row = [&](size_t row) -> Result<const state::ResourceState*> {
    const std::string& address = digests[row].address;
    auto it = std::lower_bound(
        prior.resources.begin(), prior.resources.end(), address,
        [](const state::ResourceState& r, const std::string& a) { return r.address < a; });
    if (it == prior.resources.end() || it->address != address) {
      return MakeError(address + " left the state of environment " + prior.environment.name +
                       " while the plan was made (by another driftless); plan again");
    }
    return &*it;
  };
  for (size_t i : compared) {
    Work& w = work[i];
    if (w.row < 0) continue;
    Result<const state::ResourceState*> st = full_row(static_cast<size_t>(w.row));
    if (!st.ok()) return st.error();
    w.st = *st;
  }
  // The changes are made in place, in a vector sized before the threads start: exactly (a
  // Change is large, and growing the vector would briefly hold two copies), and not one heap
  // block per change in the threads' allocator arenas, which would stay there as holes.
  size_t deleted = 0;
  for (char c : claimed) deleted += !c;
  // Unchanged resources are only counted: at 100,000 resources a Change each would be a fifth
  // of the memory of a plan.
  // A resource that state does not know may be a plain create, which gets no Change
  // (PlanOptions::lean_creates): it is planned into a scratch Change, kept only when it is not
  // one (its object exists already); the others are planned in place.
  const bool plain_creates = options.lean_creates && !options.destroy && !options.list_unchanged;
  auto may_be_plain = [&](size_t k) { return plain_creates && work[compared[k]].st == nullptr; };
  std::vector<size_t> slot(compared.size());  // in plan.changes, unless may_be_plain(k)
  size_t in_place = 0;
  for (size_t k = 0; k < compared.size(); ++k) slot[k] = may_be_plain(k) ? 0 : in_place++;
  plan.changes.reserve((options.list_unchanged ? work.size() : in_place) + deleted);
  plan.changes.resize(options.list_unchanged ? work.size() : in_place);
  std::mutex kept_mu;
  std::vector<std::pair<size_t, Change>> kept;  // (k, change) of those that were not plain
  ParallelFor(compared.size(), options.parallelism, [&](size_t k) {
    Work& w = work[compared[k]];
    if (!may_be_plain(k)) {
      PlanDeclared(env, w, plan.changes[options.list_unchanged ? compared[k] : slot[k]], batched,
                   options);
      return;
    }
    Change c;
    PlanDeclared(env, w, c, batched, options);
    if (w.plain || w.error) return;
    std::lock_guard<std::mutex> lock(kept_mu);
    kept.emplace_back(k, std::move(c));
  });
  for (size_t i : compared) {
    if (work[i].error) return MakeError(*work[i].error);
  }
  if (!kept.empty()) {
    std::sort(kept.begin(), kept.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    const size_t planned_in_place = plan.changes.size();
    for (auto& [k, c] : kept) plan.changes.push_back(std::move(c));
    std::vector<std::pair<size_t, Change>>().swap(kept);
    std::inplace_merge(
        plan.changes.begin(), plan.changes.begin() + static_cast<long>(planned_in_place),
        plan.changes.end(), [](const Change& a, const Change& b) { return a.address < b.address; });
  }
  for (size_t i : compared) {
    if (work[i].plain)
      plan.creates.push_back({static_cast<uint32_t>(work[i].er - env.resources().data()), 0});
  }
  plan.unchanged = work.size() - compared.size();
  if (options.list_unchanged) {
    plan.unchanged = 0;
    for (size_t i = 0; i < work.size(); ++i) {
      if (work[i].compare) continue;
      const config::Resource& r = *work[i].er->decl;
      Change& c = plan.changes[i];
      c.address = r.address;
      c.kind = r.kind;
      c.name = r.name;
      c.target = r.target;
      c.spec_hash = work[i].er->spec_hash;
      c.index = static_cast<int>(i);
    }
  }
  std::vector<Work>().swap(work);
  const size_t declared = plan.changes.size();

  // Resources only in state: delete.
  for (size_t row = 0; row < digests.size(); ++row) {
    if (claimed[row]) continue;
    if (options.only != nullptr && options.only->count(digests[row].address) == 0) continue;
    Result<const state::ResourceState*> full = full_row(row);
    if (!full.ok()) return full.error();
    const state::ResourceState& rs = **full;
    Change c;
    c.address = rs.address;
    c.kind = rs.kind;
    c.name = rs.name;
    c.target = rs.target;
    c.action = Action::kDelete;
    c.reason = options.destroy ? "destroy" : "no longer declared";
    c.depends_on = rs.depends_on;
    Result<StoredAttrs> s = DecodeStored(rs.attrs_json);
    if (!s.ok()) return MakeError(rs.address + ": " + s.error().message);
    c.prior = Project(s->attrs, s->keys, s->ignore);
    c.applied_attrs = s->attrs;
    c.diff = AttrDiff(c.prior, Value());
    if (s->prevent_destroy) {
      plan.problems.Error({}, rs.address + " has policy.prevent_destroy and would be deleted",
                          "remove prevent_destroy from its policy first, or keep it declared");
    }
    plan.changes.push_back(std::move(c));
  }
  for (const auto& c : plan.changes) {
    if (c.action == Action::kReplace && c.index >= 0 &&
        env.resources()[static_cast<size_t>(c.index)].decl->policy.prevent_destroy) {
      plan.problems.Error(env.resources()[static_cast<size_t>(c.index)].decl->pos,
                          c.address + " has policy.prevent_destroy and would be replaced");
    }
  }
  // Declared resources and state rows are each sorted by address already.
  std::inplace_merge(plan.changes.begin(), plan.changes.begin() + static_cast<long>(declared),
                     plan.changes.end(),
                     [](const Change& a, const Change& b) { return a.address < b.address; });
  // Each plain create's place among the changes, and what makes its Change.
  size_t j = 0;
  for (Plan::Create& c : plan.creates) {
    const std::string& address = env.resources()[c.index].decl->address;
    while (j < plan.changes.size() && plan.changes[j].address < address) ++j;
    c.before = static_cast<uint32_t>(j);
  }
  if (!plan.creates.empty()) {
    plan.make_create = [&env](uint32_t index, bool whole, Change& c) {
      MakeCreate(env, index, whole, c);
    };
  }
  return plan;
}

std::vector<state::LiveStamp> LiveStamps(const PriorState& prior,
                                         std::span<Plan::NewStamp> stamps) {
  std::vector<state::LiveStamp> out;
  out.reserve(stamps.size());
  for (Plan::NewStamp& s : stamps) {
    const state::ResourceDigest& d = prior.digests.at(s.row);
    out.push_back({d.address, d.live_digest, std::move(s.stamp)});
  }
  return out;
}

}  // namespace driftless::plan
