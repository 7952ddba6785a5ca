// Installs the arithmetic methods on Tensor (t.add(u), t.softmax(1), ...), so that tensor/ itself needs no
// import of ops/ and imports keep pointing down.

import { Tensor } from '../tensor/tensor.js';
import * as ew from './elementwise.js';
import * as rd from './reduce.js';
import { relu } from './activation.js';
import { matmul } from './linear.js';

type Operand = Tensor | number;

declare module '../tensor/tensor.js' {
  interface Tensor {
    add(other: Operand): Tensor;
    sub(other: Operand): Tensor;
    mul(other: Operand): Tensor;
    div(other: Operand): Tensor;
    add_(other: Operand): Tensor;
    eq(other: Operand): Tensor;
    ne(other: Operand): Tensor;
    lt(other: Operand): Tensor;
    le(other: Operand): Tensor;
    gt(other: Operand): Tensor;
    ge(other: Operand): Tensor;
    neg(): Tensor;
    abs(): Tensor;
    exp(): Tensor;
    log(): Tensor;
    sqrt(): Tensor;
    sum(dim?: number, keepdim?: boolean): Tensor;
    mean(dim?: number, keepdim?: boolean): Tensor;
    max(dim?: number, keepdim?: boolean): Tensor;
    argmax(dim?: number, keepdim?: boolean): Tensor;
    argmin(dim?: number, keepdim?: boolean): Tensor;
    topk(k: number, dim?: number, largest?: boolean): { values: Tensor; indices: Tensor };
    softmax(dim: number): Tensor;
    logSoftmax(dim: number): Tensor;
    relu(): Tensor;
    relu_(): Tensor;
    matmul(other: Tensor): Tensor;
  }
}

const P = Tensor.prototype;
P.add = function (o) { return ew.add(this, o); };
P.sub = function (o) { return ew.sub(this, o); };
P.mul = function (o) { return ew.mul(this, o); };
P.div = function (o) { return ew.div(this, o); };
P.add_ = function (o) { return ew.addInPlace(this, o); };
P.eq = function (o) { return ew.eq(this, o); };
P.ne = function (o) { return ew.ne(this, o); };
P.lt = function (o) { return ew.lt(this, o); };
P.le = function (o) { return ew.le(this, o); };
P.gt = function (o) { return ew.gt(this, o); };
P.ge = function (o) { return ew.ge(this, o); };
P.neg = function () { return ew.neg(this); };
P.abs = function () { return ew.abs(this); };
P.exp = function () { return ew.exp(this); };
P.log = function () { return ew.log(this); };
P.sqrt = function () { return ew.sqrt(this); };
P.sum = function (d, k) { return rd.sum(this, d, k); };
P.mean = function (d, k) { return rd.mean(this, d, k); };
P.max = function (d, k) { return rd.max(this, d, k); };
P.argmax = function (d, k) { return rd.argmax(this, d, k); };
P.argmin = function (d, k) { return rd.argmin(this, d, k); };
P.topk = function (k, d, l) { return rd.topk(this, k, d, l); };
P.softmax = function (d) { return rd.softmax(this, d); };
P.logSoftmax = function (d) { return rd.logSoftmax(this, d); };
P.relu = function () { return relu(this); };
P.relu_ = function () { return relu(this, true); };
P.matmul = function (o) { return matmul(this, o); };
