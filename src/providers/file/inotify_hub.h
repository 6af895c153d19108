#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "base/result.h"

namespace driftless::providers::file {

/// One inotify instance for the whole process, shared by every file watcher (Linux allows 128
/// instances per user by default, and a server watches hundreds of environments). A thread of
/// its own reads the instance and routes each event by watch descriptor to the subscribers of
/// that descriptor. The kernel gives two watches of the same folder one descriptor: the hub
/// counts its subscribers and removes the kernel's watch when the last one leaves. Thread-safe.
class InotifyHub {
 public:
  /// At most this many events wait in one subscriber's queue; more are dropped and the
  /// subscriber is told it lost events, as the kernel does with its own queue.
  static constexpr size_t kQueueLimit = 16384;

  /// One event as a subscriber gets it.
  struct Event {
    int wd = -1;
    uint32_t mask = 0;
    std::string name;  ///< "" for an event on the watched folder itself
  };

  /// The queue of one subscriber (a watcher): what the hub routed to it since its last Take.
  class Queue {
   public:
    /// Waits up to `timeout_ms` (-1: without end) until an event is queued, events were lost
    /// or Interrupt was called, then moves the queued events into *events (appending) and
    /// returns true when events were lost since the last Take. An interrupt is used up by the
    /// Take it ends.
    bool Take(int timeout_ms, std::vector<Event>* events);
    /// Ends a Take in progress at once, or the next one when none is; from any thread.
    void Interrupt();

   private:
    friend class InotifyHub;
    std::mutex mu_;
    std::condition_variable cv_;
    std::vector<Event> events_;
    bool lost_ = false;
    bool interrupted_ = false;
  };

  /// The process's hub: made (the inotify instance and its thread) by the first caller, ended
  /// when the last holder lets it go.
  static Result<std::shared_ptr<InotifyHub>> Shared();

  InotifyHub(const InotifyHub&) = delete;
  InotifyHub& operator=(const InotifyHub&) = delete;
  ~InotifyHub();

  /// Watches folder `dir` for `queue`: its descriptor, or -1 when the folder does not exist
  /// (or is not a folder). An error when the kernel refuses (the watch limit).
  Result<int> Add(Queue* queue, const std::string& dir);
  /// Ends one watch of `queue` on `wd` (an Add's result); the kernel's watch goes with the
  /// last subscriber. A descriptor the kernel dropped already (IN_IGNORED) is no error.
  void Remove(Queue* queue, int wd);
  /// Ends every watch of `queue`: after it returns the hub never touches `queue` again.
  void Unsubscribe(Queue* queue);

  /// The descriptors the hub holds for its subscribers (for tests).
  size_t WatchCount();

 private:
  InotifyHub(int fd, int wake_fd);
  void Read();
  void Route(const char* buf, size_t len);

  int fd_;
  int wake_fd_;  // an eventfd: written by the destructor to end the reading thread
  std::mutex mu_;
  // Per descriptor, its subscribers (a queue once per Add it made).
  std::unordered_map<int, std::vector<Queue*>> subscribers_;
  std::thread reader_;
};

}  // namespace driftless::providers::file
