#include "plan/plan.h"

#include "base/hash.h"
#include "base/strings.h"

namespace driftless::plan {

std::string_view ActionName(Action a) {
  switch (a) {
    case Action::kNoop:
      return "no-op";
    case Action::kCreate:
      return "create";
    case Action::kUpdate:
      return "update";
    case Action::kReplace:
      return "replace";
    case Action::kDelete:
      return "delete";
    case Action::kHeal:
      return "heal";
    case Action::kRecord:
      return "record";
  }
  return "?";
}

void Plan::ForEachChange(const std::function<void(const Change&)>& fn, bool whole) const {
  Change made;
  InAddressOrder([&](size_t j) { fn(changes[j]); },
                 [&](const Create& c) {
                   made = Change();
                   make_create(c.index, whole, made);
                   fn(made);
                 });
}

void Plan::CompleteAll() {
  if (!creates.empty()) {
    std::vector<Change> all;
    all.reserve(changes.size() + creates.size());
    InAddressOrder([&](size_t j) { all.push_back(std::move(changes[j])); },
                   [&](const Create& c) { make_create(c.index, true, all.emplace_back()); });
    changes = std::move(all);
    std::vector<Create>().swap(creates);
  }
  make_create = nullptr;
}

size_t Plan::Count(Action a) const {
  size_t n = a == Action::kNoop ? unchanged : a == Action::kCreate ? creates.size() : 0;
  for (const auto& c : changes) n += c.action == a;
  return n;
}

bool Plan::HasChanges() const {
  if (!creates.empty()) return true;
  for (const auto& c : changes)
    if (c.action != Action::kNoop) return true;
  return false;
}

size_t Plan::DriftCount() const {
  size_t n = 0;
  for (const auto& c : changes) n += c.drift;
  return n;
}

std::string Plan::Hash() const {
  Sha256 h;
  h.Update(environment);
  h.Update("\n");
  h.Update(decl_hash);
  h.Update("\n");
  h.Update(std::to_string(state_serial));
  h.Update(destroy ? "\ndestroy\n" : "\napply\n");
  h.Update(revision);
  h.Update("\n");
  for (const auto& s : steps) {
    h.Update("step " + s.commit + " " + Join(s.transitions, ";") + "\n");
  }
  ForEachChange(
      [&h](const Change& c) {
        if (c.action == Action::kNoop) return;
        h.Update(c.address);
        h.Update(" ");
        h.Update(ActionName(c.action));
        h.Update(" ");
        h.Update(c.spec_hash);
        h.Update(" ");
        h.Update(value::ToJson(c.live));
        h.Update("\n");
      },
      false);
  return h.HexDigest();
}

std::string Plan::Summary() const {
  return std::to_string(Count(Action::kCreate)) + " to create, " +
         std::to_string(Count(Action::kUpdate)) + " to update, " +
         std::to_string(Count(Action::kReplace)) + " to replace, " +
         std::to_string(Count(Action::kDelete)) + " to delete, " +
         std::to_string(Count(Action::kHeal)) + " to heal, " +
         (Count(Action::kRecord) ? std::to_string(Count(Action::kRecord)) + " to record, " : "") +
         std::to_string(Count(Action::kNoop)) + " unchanged";
}

}  // namespace driftless::plan
