// context.cpp: the emulator's coroutine switch on x86-64 (System V): saves the callee-saved
// registers and the SSE/x87 control words on the current stack, swaps stack pointers, restores
// the other side's. ucontext's swapcontext does the same plus two signal-mask system calls per
// switch, which made those calls most of the emulator's time; other targets still use it
// (cuda_emu.h). A new coroutine's stack is laid out by coro_start to "return" into the
// trampoline, which calls fn(arg) (r12, r13) on a 16-byte aligned stack.
#if defined(__x86_64__)
asm(R"(
    .text
    .globl garnet_emu_switch
    .type garnet_emu_switch, @function
garnet_emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size garnet_emu_switch, .-garnet_emu_switch

    .globl garnet_emu_trampoline
    .type garnet_emu_trampoline, @function
garnet_emu_trampoline:
    movq %r13, %rdi
    callq *%r12
    ud2
    .size garnet_emu_trampoline, .-garnet_emu_trampoline
    .section .note.GNU-stack,"",@progbits
)");
#endif
