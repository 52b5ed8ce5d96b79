/* i386 test programs without libc (compat-fast32.c, signal32.c): the entry point, and vcall(nr, a),
 * a system call with the six arguments at a through the vDSO's __kernel_vsyscall (vsys, set from
 * the auxiliary vector: the fast compat path, sysenter or syscall). */
__asm__(".globl _start\n_start:\n xor %ebp, %ebp\n push %esp\n call cmain\n hlt\n"
        ".globl vcall\nvcall:\n push %ebp\n push %ebx\n push %esi\n push %edi\n"
        " mov 20(%esp), %eax\n mov 24(%esp), %edi\n"
        " mov 0(%edi), %ebx\n mov 4(%edi), %ecx\n mov 8(%edi), %edx\n mov 12(%edi), %esi\n mov 20(%edi), %ebp\n mov 16(%edi), %edi\n"
        " call *vsys\n pop %edi\n pop %esi\n pop %ebx\n pop %ebp\n ret\n");
int vcall(int nr, const int *a);
unsigned vsys;
