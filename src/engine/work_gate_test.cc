#include <gtest/gtest.h>

#include <thread>

#include "engine/watch.h"

namespace driftless::engine {
namespace {

TEST(WorkGateTest, SlotsAreSharedAndAStopEndsAWaitForOne) {
  WorkGate gate(1);
  StopToken first, second;
  ASSERT_TRUE(gate.Enter(first));
  // The only slot is taken: the second watch waits until its stop (set before or during the
  // wait: the answer is the same).
  std::thread waiter([&] { EXPECT_FALSE(gate.Enter(second)); });
  second.Stop();
  gate.Wake();
  waiter.join();
  // A stopped waiter took nothing: the slot is the next one's once it is left.
  gate.Leave();
  StopToken third;
  EXPECT_TRUE(gate.Enter(third));
  gate.Leave();
}

TEST(WorkGateTest, ALeftSlotLetsAWaiterIn) {
  WorkGate gate(1);
  StopToken first, second;
  ASSERT_TRUE(gate.Enter(first));
  bool entered = false;
  std::thread waiter([&] { entered = gate.Enter(second); });
  gate.Leave();
  waiter.join();
  EXPECT_TRUE(entered);
  gate.Leave();
}

}  // namespace
}  // namespace driftless::engine
