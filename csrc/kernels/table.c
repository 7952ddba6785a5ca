// table.c: this build's kernel table (one per SIMD level; see kernels.h). The scalar build also provides the
// "ref" table, which points every op at its naive reference so tests can check those against the js backend.

#include "kernels.h"

#define DL_TABLE_NAME2(a) #a
#define DL_TABLE_NAME(a) DL_TABLE_NAME2(a)

const dl_kernel_table DL_RENAME(dl_kernels) = {
  .name = DL_TABLE_NAME(DL_ISA),
  .conv2d_packed_size = dl_conv2d_packed_size,
  .conv2d_pack = dl_conv2d_pack,
  .conv2d = dl_conv2d,
  .gemm = dl_gemm,
  .batchnorm = dl_batchnorm,
  .batchnorm_stats = dl_batchnorm_stats,
  .maxpool2d = dl_maxpool2d,
  .adaptive_avgpool2d = dl_adaptive_avgpool2d,
  .relu = dl_relu,
  .add = dl_add,
  .conv2d_bwd_data_packed_size = dl_conv2d_bwd_data_packed_size,
  .conv2d_bwd_data_pack = dl_conv2d_bwd_data_pack,
  .conv2d_bwd_data = dl_conv2d_bwd_data,
  .conv2d_bwd_weight = dl_conv2d_bwd_weight,
  .batchnorm_bwd = dl_batchnorm_bwd,
  .maxpool2d_bwd = dl_maxpool2d_bwd,
  .adaptive_avgpool2d_bwd = dl_adaptive_avgpool2d_bwd,
  .relu_bwd = dl_relu_bwd,
  .sgd_step = dl_sgd_step,
  .adamw_step = dl_adamw_step,
};

#ifdef DL_ISA_IS_SCALAR
const dl_kernel_table dl_kernels_ref = {
  .name = "ref",
  .conv2d_packed_size = dl_conv2d_packed_size,
  .conv2d_pack = dl_conv2d_pack,
  .conv2d = dl_conv2d_ref,
  .gemm = dl_gemm_ref,
  .batchnorm = dl_batchnorm_ref,
  .batchnorm_stats = dl_batchnorm_stats_ref,
  .maxpool2d = dl_maxpool2d_ref,
  .adaptive_avgpool2d = dl_adaptive_avgpool2d_ref,
  .relu = dl_relu_ref,
  .add = dl_add_ref,
  .conv2d_bwd_data_packed_size = dl_conv2d_bwd_data_packed_size,
  .conv2d_bwd_data_pack = dl_conv2d_bwd_data_pack,
  .conv2d_bwd_data = dl_conv2d_bwd_data_ref,
  .conv2d_bwd_weight = dl_conv2d_bwd_weight_ref,
  .batchnorm_bwd = dl_batchnorm_bwd_ref,
  .maxpool2d_bwd = dl_maxpool2d_bwd_ref,
  .adaptive_avgpool2d_bwd = dl_adaptive_avgpool2d_bwd_ref,
  .relu_bwd = dl_relu_bwd_ref,
  .sgd_step = dl_sgd_step_ref,
  .adamw_step = dl_adamw_step_ref,
};
#endif
