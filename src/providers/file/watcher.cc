// inotify watches for the file provider: one watch per folder that holds a managed object (and
// one on every managed folder), so that edits, deletes, renames, mode and owner changes of the
// objects inside are seen without a watch per file. 100,000 files in 1,000 folders are 1,000
// watches. Every watcher of the process shares one inotify instance (InotifyHub) and waits on
// its own queue of events.

#include "providers/file/watcher.h"

#include <sys/inotify.h>

#include <algorithm>
#include <cstdint>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "providers/file/inotify_hub.h"

namespace driftless::providers::file {

namespace {

class InotifyWatcher final : public provider::Watcher {
 public:
  explicit InotifyWatcher(std::shared_ptr<InotifyHub> hub) : hub_(std::move(hub)) {}
  ~InotifyWatcher() override { hub_->Unsubscribe(&queue_); }

  // Watches the folders of `paths`: an event naming an object (or any event in a managed
  // folder) flags its address.
  Status Start(const std::string& root, const std::vector<WatchedPath>& paths) {
    std::unordered_map<std::string, int> wd_of;  // folder -> descriptor (-1: not there)
    auto watch = [&](const std::string& dir) -> Result<int> {
      auto known = wd_of.find(dir);
      if (known != wd_of.end()) return known->second;
      Result<int> wd = hub_->Add(&queue_, dir);
      if (!wd.ok()) return wd.error();
      if (*wd >= 0 && std::find(held_.begin(), held_.end(), *wd) != held_.end()) {
        hub_->Remove(&queue_, *wd);  // another name of a folder watched already: one watch
      } else if (*wd >= 0) {
        held_.push_back(*wd);
      }
      wd_of.emplace(dir, *wd);
      return *wd;
    };
    for (const WatchedPath& p : paths) {
      std::string full = root + "/" + p.path;
      size_t slash = full.rfind('/');
      Result<int> parent = watch(full.substr(0, slash));
      if (!parent.ok()) return parent.error();
      Span address{};
      if (*parent >= 0) {
        address = Append(p.address);
        named_.push_back({*parent, Append(std::string_view(full).substr(slash + 1)), address});
      }
      if (!p.is_directory) continue;
      Result<int> self = watch(full);
      if (!self.ok()) return self.error();
      if (*self < 0) continue;
      if (*parent < 0) address = Append(p.address);
      any_.push_back({*self, address});
    }
    std::sort(named_.begin(), named_.end(),
              [this](const Named& a, const Named& b) { return KeyOf(a) < KeyOf(b); });
    std::sort(any_.begin(), any_.end(), [](const Any& a, const Any& b) { return a.wd < b.wd; });
    std::sort(held_.begin(), held_.end());
    text_.shrink_to_fit();
    named_.shrink_to_fit();
    any_.shrink_to_fit();
    held_.shrink_to_fit();
    return Status::Ok();
  }

  Status Wait(int timeout_ms, std::vector<provider::WatchHint>* changed, bool* lost) override {
    std::vector<InotifyHub::Event> events;
    if (queue_.Take(timeout_ms, &events)) *lost = true;
    for (const InotifyHub::Event& e : events) {
      if (!std::binary_search(held_.begin(), held_.end(), e.wd)) continue;
      auto any = std::equal_range(any_.begin(), any_.end(), Any{e.wd, {}},
                                  [](const Any& a, const Any& b) { return a.wd < b.wd; });
      for (auto it = any.first; it != any.second; ++it) Hint(it->address, changed);
      auto by_wd = [](const Named& a, const Named& b) { return a.wd < b.wd; };
      if (e.mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)) {
        // The folder itself went away: everything in it changed, and its watch is gone.
        auto all = std::equal_range(named_.begin(), named_.end(), Named{e.wd, {}, {}}, by_wd);
        for (auto it = all.first; it != all.second; ++it) Hint(it->address, changed);
        *lost = true;
        // The hub forgets the descriptor with its IN_IGNORED: so does the watcher.
        if (e.mask & IN_IGNORED) held_.erase(std::lower_bound(held_.begin(), held_.end(), e.wd));
        continue;
      }
      if (e.name.empty()) continue;
      const Key key{e.wd, e.name};
      auto it = std::lower_bound(named_.begin(), named_.end(), key,
                                 [this](const Named& a, const Key& k) { return KeyOf(a) < k; });
      for (; it != named_.end() && KeyOf(*it) == key; ++it) Hint(it->address, changed);
    }
    return Status::Ok();
  }

  size_t WatchCount() const override { return held_.size(); }
  bool Interruptible() const override { return true; }
  void Interrupt() override { queue_.Interrupt(); }

 private:
  // A piece of text_: names and addresses are kept in one string (a watcher of 1,000 files
  // holds about 50 KB, not a map of strings per folder).
  struct Span {
    uint32_t offset = 0;
    uint32_t size = 0;
  };
  struct Named {  // an object in a watched folder: events naming it flag its address
    int wd;
    Span name;
    Span address;
  };
  struct Any {  // a managed folder: any event in it flags its address
    int wd;
    Span address;
  };

  Span Append(std::string_view s) {
    Span span{static_cast<uint32_t>(text_.size()), static_cast<uint32_t>(s.size())};
    text_.append(s);
    return span;
  }
  std::string_view View(Span s) const { return std::string_view(text_).substr(s.offset, s.size); }
  using Key = std::pair<int, std::string_view>;
  Key KeyOf(const Named& n) const { return {n.wd, View(n.name)}; }
  // Files cannot tell who changed them: the hints carry no actor.
  void Hint(Span address, std::vector<provider::WatchHint>* changed) const {
    changed->push_back({std::string(View(address)), ""});
  }

  std::shared_ptr<InotifyHub> hub_;
  InotifyHub::Queue queue_;
  std::string text_;
  std::vector<Named> named_;  // by descriptor, then name
  std::vector<Any> any_;      // by descriptor
  std::vector<int> held_;     // the descriptors this watcher subscribed to, sorted
};

}  // namespace

Result<std::unique_ptr<provider::Watcher>> WatchFiles(const std::string& root,
                                                      const std::vector<WatchedPath>& paths) {
  Result<std::shared_ptr<InotifyHub>> hub = InotifyHub::Shared();
  if (!hub.ok()) return hub.error();
  auto w = std::make_unique<InotifyWatcher>(std::move(*hub));
  Status s = w->Start(root, paths);
  if (!s.ok()) return s.error();
  return std::unique_ptr<provider::Watcher>(std::move(w));
}

}  // namespace driftless::providers::file
