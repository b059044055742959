// LaneScheduler: coroutine lanes with their own stacks. On x86-64 a lane
// switch is a dozen instructions (callee-saved registers, the stack pointer,
// the x87 and SSE control words), since ucontext's swapcontext makes a
// sigprocmask system call per switch, which made the warp emulation tests
// several times slower; elsewhere swapcontext is used.
#include "warp_emulation.hpp"

#include <ucontext.h>

#include <algorithm>
#include <cstdint>
#include <exception>
#include <stdexcept>
#include <vector>

#if defined(__x86_64__)
#define COLLAPSE_LANE_SWITCH_ASM 1
// collapse_lane_switch(save, load): saves the callee-saved state on the
// current stack, stores the stack pointer in *save, and resumes the context
// whose stack pointer is `load`.
extern "C" void collapse_lane_switch(void** save, void* load);
asm(R"(
    .text
    .p2align 4
    .globl collapse_lane_switch
    .type collapse_lane_switch, @function
collapse_lane_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $16, %rsp
    stmxcsr 8(%rsp)
    fnstcw (%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    fldcw (%rsp)
    ldmxcsr 8(%rsp)
    addq $16, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size collapse_lane_switch, .-collapse_lane_switch
    .section .note.GNU-stack,"",@progbits
    .text
)");
#endif

namespace collapse::testing {

struct LaneScheduler::Lanes {
    static constexpr std::size_t stack_bytes = 256 * 1024;
    std::function<void(int)> body;
    std::vector<std::vector<char>> stacks;
    std::vector<bool> finished;
    std::vector<bool> at_warp_sync; // waiting at a warp sync (else at a block sync, or finished)
    std::exception_ptr error;
    int current = 0;
#if COLLAPSE_LANE_SWITCH_ASM
    void* scheduler = nullptr;
    std::vector<void*> saved;
#else
    ucontext_t scheduler{};
    std::vector<ucontext_t> saved;
#endif

    void run_lane(int rank) {
        try {
            body(rank);
        } catch (...) {
            if (!error) error = std::current_exception();
        }
        finished[static_cast<std::size_t>(rank)] = true;
    }
    void resume(int rank) {
        current = rank;
#if COLLAPSE_LANE_SWITCH_ASM
        collapse_lane_switch(&scheduler, saved[static_cast<std::size_t>(rank)]);
#else
        swapcontext(&scheduler, &saved[static_cast<std::size_t>(rank)]);
#endif
    }
    void yield(int rank) {
#if COLLAPSE_LANE_SWITCH_ASM
        collapse_lane_switch(&saved[static_cast<std::size_t>(rank)], scheduler);
#else
        swapcontext(&saved[static_cast<std::size_t>(rank)], &scheduler);
#endif
    }
};

namespace {

thread_local LaneScheduler::Lanes* starting = nullptr; // read once by each lane's entry

#if COLLAPSE_LANE_SWITCH_ASM
[[noreturn]] void lane_entry() {
    LaneScheduler::Lanes* lanes = starting;
    const int rank = lanes->current;
    lanes->run_lane(rank);
    lanes->yield(rank); // the scheduler never resumes a finished lane
    std::terminate();
}
#else
void lane_entry() {
    LaneScheduler::Lanes* lanes = starting;
    lanes->run_lane(lanes->current);
} // returns to uc_link, the scheduler
#endif

} // namespace

LaneScheduler::LaneScheduler() : lanes_(std::make_unique<Lanes>()) {}
LaneScheduler::~LaneScheduler() = default;

void LaneScheduler::run(int lane_count, std::function<void(int)> body) {
    Lanes& lanes = *lanes_;
    const auto count = static_cast<std::size_t>(lane_count);
    lanes.body = std::move(body);
    lanes.finished.assign(count, false);
    lanes.at_warp_sync.assign(count, false);
    lanes.stacks.resize(count);
    lanes.saved.resize(count);
    lanes.error = nullptr;
    starting = &lanes;
    for (std::size_t rank = 0; rank < count; ++rank) {
        std::vector<char>& stack = lanes.stacks[rank];
        stack.resize(Lanes::stack_bytes);
#if COLLAPSE_LANE_SWITCH_ASM
        // A frame as collapse_lane_switch leaves it: control words, six
        // registers, then the "return address" lane_entry, placed so that
        // lane_entry starts with the stack alignment of a called function.
        auto top = reinterpret_cast<std::uintptr_t>(stack.data() + stack.size()) & ~std::uintptr_t{15};
        auto* frame = reinterpret_cast<std::uint64_t*>(top) - 10;
        std::uint32_t mxcsr = 0;
        std::uint16_t control = 0;
        asm volatile("stmxcsr %0" : "=m"(mxcsr));
        asm volatile("fnstcw %0" : "=m"(control));
        frame[0] = control;
        frame[1] = mxcsr;
        for (int r = 2; r < 8; ++r) frame[r] = 0; // r15 .. rbp
        frame[8] = reinterpret_cast<std::uint64_t>(&lane_entry);
        frame[9] = 0;
        lanes.saved[rank] = frame;
#else
        ucontext_t& context = lanes.saved[rank];
        getcontext(&context);
        context.uc_stack.ss_sp = stack.data();
        context.uc_stack.ss_size = stack.size();
        context.uc_link = &lanes.scheduler;
        makecontext(&context, &lane_entry, 0);
#endif
    }
    // Warps whose lanes all wait at a warp sync go on (in rank order) until
    // none is left; then every lane waits at a block sync or has returned,
    // and all go on. Anything else (lanes of one warp at syncs of different
    // kinds, some lanes returned while others wait) would hang on the
    // device: the lanes are run to completion all the same, and run throws.
    const auto resume_lane = [&](std::size_t rank) {
        lanes.at_warp_sync[rank] = false;
        lanes.resume(static_cast<int>(rank));
    };
    constexpr auto lanes_per_warp = static_cast<std::size_t>(warp_lanes);
    bool consistent = true;
    for (;;) {
        for (bool released = true; released;) {
            released = false;
            for (std::size_t first = 0; first < count; first += lanes_per_warp) {
                const std::size_t end = std::min(count, first + lanes_per_warp);
                bool some_waiting = false, all_waiting = true;
                for (std::size_t rank = first; rank < end; ++rank) {
                    some_waiting = some_waiting || lanes.at_warp_sync[rank];
                    all_waiting = all_waiting && lanes.at_warp_sync[rank];
                }
                if (!some_waiting || !all_waiting) continue;
                for (std::size_t rank = first; rank < end; ++rank) resume_lane(rank);
                released = true;
            }
        }
        std::size_t still = 0, at_warp_sync = 0;
        for (std::size_t rank = 0; rank < count; ++rank) {
            still += lanes.finished[rank] ? 0 : 1;
            at_warp_sync += lanes.at_warp_sync[rank] ? 1 : 0;
        }
        if (still == 0) break;
        if (still != count || at_warp_sync != 0) consistent = false;
        for (std::size_t rank = 0; rank < count; ++rank)
            if (!lanes.finished[rank]) resume_lane(rank);
    }
    if (lanes.error) std::rethrow_exception(lanes.error);
    if (!consistent) throw std::logic_error("lanes of one warp reached different numbers of syncs");
}

void LaneScheduler::sync(int rank) { lanes_->yield(rank); }

void LaneScheduler::sync_warp(int rank) {
    lanes_->at_warp_sync[static_cast<std::size_t>(rank)] = true;
    lanes_->yield(rank);
}

} // namespace collapse::testing
