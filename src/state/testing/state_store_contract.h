#pragma once

// The contract every StateStore implementation keeps, as one value-parameterised GoogleTest
// suite (StateStoreContract). A backend's test binary links dl_state_contract and instantiates
// the suite with a BackendFactory:
//
//   INSTANTIATE_TEST_SUITE_P(Sqlite, StateStoreContract,
//                            ::testing::Values(SqliteBackend()), BackendName);
//
// Every test gets fresh, empty storage of its own (a temporary file, a new database), so the
// tests of one backend may run in parallel.

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "state/state_store.h"

namespace driftless::state::testing {

/// The storage of one test on one backend.
class Backend {
 public:
  virtual ~Backend() = default;
  /// A new store object (its own connection) on this test's storage; nullptr, with a test
  /// failure recorded, when it cannot be opened. Safe to call in a forked child.
  virtual std::unique_ptr<StateStore> Open() = 0;
  /// Makes the current lease of `env` expired, as if its holder had stopped renewing it long
  /// ago (by writing the backend's storage directly).
  virtual void ExpireLease(const std::string& env) = 0;
};

/// How to make a Backend for one test.
struct BackendFactory {
  std::string name;  ///< "sqlite", "postgres": the suffix of the tests' names
  std::function<std::unique_ptr<Backend>()> make;
};

/// Prints the backend's name (instead of the factory's bytes) in test messages.
inline void PrintTo(const BackendFactory& f, std::ostream* os) { *os << f.name; }

/// Names the instantiated tests after the backend.
std::string BackendName(const ::testing::TestParamInfo<BackendFactory>& info);

/// The fixture of the contract tests.
class StateStoreContract : public ::testing::TestWithParam<BackendFactory> {
 protected:
  void SetUp() override;
  /// A new store object on this test's storage (nullptr, and a failure, when it cannot open).
  std::unique_ptr<StateStore> OpenStore();
  /// `count` store objects on this test's storage, for as many threads, after creating
  /// environment `env` (unless it is empty); fewer, and a failure, when one cannot open.
  std::vector<std::unique_ptr<StateStore>> OpenStores(int count, const std::string& env);

  std::unique_ptr<Backend> backend_;
};

}  // namespace driftless::state::testing
