#pragma once

// In-process change channels (change_channel.h): what the SQLite backend, which serves one
// server per file, uses for ControlStore::Listen and Notify. Channels are grouped by a key (the
// state file's canonical path), so two states in one process (tests) do not hear each other.

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "state/change_channel.h"

namespace driftless::state {

/// Delivers `payload` on `channel` of `key` to every listener of this process subscribed to it.
/// Thread-safe.
void PublishLocal(const std::string& key, std::string_view channel, std::string_view payload);

/// Tells, when asked, whether something outside this process may have written since it was last
/// asked (true: the listener answers Wakeup::missed).
using ChangedElsewhere = std::function<Result<bool>()>;

/// A listener on `channels` of `key` in this process. While it waits it calls `elsewhere`
/// (when set) every `poll_ms`. A listener that falls more than 10,000 notifications behind
/// drops them and answers `missed`.
std::unique_ptr<ChangeListener> ListenLocal(const std::string& key,
                                            std::vector<std::string> channels,
                                            ChangedElsewhere elsewhere = {}, int poll_ms = 100);

}  // namespace driftless::state
