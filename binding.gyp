# Builds build/Release/resnet_native.node from csrc/. The kernels (csrc/kernels/*.c) are compiled once per SIMD
# level into static libraries whose symbols carry the level as a suffix; csrc/dispatch.c picks one at load time
# from the CPU (see csrc/kernels/kernels.h). gcc or clang, C11, no OpenMP.
{
  'variables': {
    'dl_kernel_sources': [
      'csrc/kernels/conv.c',
      'csrc/kernels/conv_bwd.c',
      'csrc/kernels/conv_dw.c',
      'csrc/kernels/conv_grouped.c',
      'csrc/kernels/eltwise.c',
      'csrc/kernels/gemm.c',
      'csrc/kernels/norm.c',
      'csrc/kernels/optim.c',
      'csrc/kernels/pool.c',
      'csrc/kernels/table.c',
    ],
    # -std=c11 alone turns FMA contraction off (ISO mode); the kernels are written for a*b+c -> FMA.
    'dl_cflags': ['-std=c11', '-O3', '-ffp-contract=fast', '-fPIC', '-Wall', '-Wextra'],
  },
  'target_defaults': {
    'cflags': ['<@(dl_cflags)'],
    'cflags!': ['-O0', '-O2'],
    'xcode_settings': {'OTHER_CFLAGS': ['<@(dl_cflags)']},
  },
  'targets': [
    {
      'target_name': 'dl_kernels_scalar',
      'type': 'static_library',
      'sources': ['<@(dl_kernel_sources)'],
      'defines': ['DL_ISA=scalar', 'DL_ISA_IS_SCALAR'],
    },
    {
      'target_name': 'resnet_native',
      'sources': ['csrc/binding/napi.c', 'csrc/binding/pool.c', 'csrc/dispatch.c', 'csrc/threadpool.c'],
      'dependencies': ['dl_kernels_scalar'],
      'conditions': [
        ['target_arch=="x64"', {
          'dependencies': ['dl_kernels_avx2', 'dl_kernels_avx512'],
          'defines': ['DL_HAVE_AVX2', 'DL_HAVE_AVX512'],
        }],
      ],
    },
  ],
  'conditions': [
    ['target_arch=="x64"', {
      'targets': [
        {
          'target_name': 'dl_kernels_avx2',
          'type': 'static_library',
          'sources': ['<@(dl_kernel_sources)'],
          'defines': ['DL_ISA=avx2'],
          'cflags': ['-march=x86-64-v3'],
          'xcode_settings': {'OTHER_CFLAGS': ['-march=x86-64-v3']},
        },
        {
          'target_name': 'dl_kernels_avx512',
          'type': 'static_library',
          'sources': ['<@(dl_kernel_sources)'],
          'defines': ['DL_ISA=avx512'],
          'cflags': ['-march=x86-64-v4'],
          'xcode_settings': {'OTHER_CFLAGS': ['-march=x86-64-v4']},
        },
      ],
    }],
  ],
}
