"""Interop half of tests/io/*.test.ts: numpy/torch write files for the TypeScript reader, and check files the
TypeScript writer made. Each command works in DIR and exchanges a manifest.json; expected contents travel as hex
of the little-endian bytes in *our* dtype (so NaN payloads, -0.0 and int64 extremes compare exactly).

  python3 interop.py npy-write DIR | npy-check DIR | st-write DIR | st-check DIR

There is no `safetensors` package here, so safetensors files are written and read by hand (struct + json), which
is also the point: an independent implementation of the format.
"""
import io, json, os, struct, sys
import numpy as np

OURS = {'float32': '<f4', 'float64': '<f8', 'int64': '<i8', 'int32': '<i4', 'uint8': '|u1', 'bool': '|b1'}
HOLD_AS = {'f2': 'float32', 'f4': 'float32', 'f8': 'float64', 'i1': 'int32', 'i2': 'int32', 'i4': 'int32',
           'i8': 'int64', 'u1': 'uint8', 'b1': 'bool'}


def specials(dtype):
    a = np.array([0.0, -0.0, 1.0, -2.5, np.inf, -np.inf, np.nan, 1e-45, 3.4e38, 6.1e-5, 65504.0, 1e-7], dtype=np.float64)
    return a.astype(dtype)


def expected(a):
    """(our dtype, hex of the bytes we must hold) for a numpy array."""
    ours = HOLD_AS[a.dtype.str[1:]]
    return ours, np.ascontiguousarray(a).astype(OURS[ours]).tobytes().hex()


def npy_write(d):
    rng = np.random.default_rng(0)
    arrays = {
        'f4': np.concatenate([specials('<f4'), rng.standard_normal(12).astype('<f4')]).reshape(2, 3, 4),
        'f8': specials('<f8'),
        'i8': np.array([-2**63, 2**63 - 1, 0, -1, 2**53 + 1], dtype='<i8'),
        'i4': np.array([[-2**31, 2**31 - 1], [0, 7]], dtype='<i4'),
        'u1': np.arange(256, dtype='u1').reshape(16, 16),
        'b1': np.array([True, False, True]),
        'scalar': np.array(3.5, dtype='<f4'),
        'empty': np.zeros((0, 3), dtype='<f4'),
        'empty_i8': np.zeros((0,), dtype='<i8'),
        'be_f4': specials('>f4'),
        'be_f8': specials('>f8').reshape(3, 4),
        'be_i8': np.array([-2**63, 2**63 - 1, 5], dtype='>i8'),
        'be_i4': np.array([-2**31, 123456], dtype='>i4'),
        'f2': specials('<f2'),
        'be_f2': specials('>f2'),
        'i2': np.array([-32768, 32767, -1], dtype='<i2'),
        'be_i2': np.array([-32768, 32767, -1], dtype='>i2'),
        'i1': np.array([-128, 127, 0], dtype='i1'),
        'big': rng.standard_normal((2, 3, 5, 7)).astype('<f4'),
    }
    manifest = {}
    for name, a in arrays.items():
        np.save(os.path.join(d, name + '.npy'), a)
        manifest[name] = {'shape': list(a.shape), 'file': name + '.npy'}
        manifest[name]['dtype'], manifest[name]['hex'] = expected(a)
    for v in [(2, 0), (3, 0)]:
        name = 'v%d' % v[0]
        a = arrays['f4']
        with open(os.path.join(d, name + '.npy'), 'wb') as f:
            np.lib.format.write_array(f, a, version=v)
        manifest[name] = {'shape': list(a.shape), 'file': name + '.npy'}
        manifest[name]['dtype'], manifest[name]['hex'] = expected(a)
    np.save(os.path.join(d, 'fortran.npy'), np.asfortranarray(np.arange(6, dtype='<f4').reshape(2, 3)))
    np.save(os.path.join(d, 'object.npy'), np.array([1, 'a'], dtype=object), allow_pickle=True)
    with open(os.path.join(d, 'manifest.json'), 'w') as f:
        json.dump(manifest, f)


def npy_check(d):
    manifest = json.load(open(os.path.join(d, 'manifest.json')))
    for name, m in manifest.items():
        path = os.path.join(d, m['file'])
        a = np.load(path, allow_pickle=False)
        assert a.dtype.str == OURS[m['dtype']], (name, a.dtype.str, m['dtype'])
        assert list(a.shape) == m['shape'], (name, a.shape, m['shape'])
        assert a.flags.c_contiguous
        assert a.tobytes().hex() == m['hex'], name
        buf = io.BytesIO()
        np.save(buf, a)
        assert buf.getvalue() == open(path, 'rb').read(), name + ': not byte-identical to np.save'
    print('OK', len(manifest))


def st_write_file(path, tensors, metadata=None):
    """tensors: list of (name, dtype string, shape, raw bytes). Header padded with spaces to a multiple of 8."""
    header, data, off = {}, b'', 0
    if metadata is not None:
        header['__metadata__'] = metadata
    for name, dt, shape, raw in tensors:
        header[name] = {'dtype': dt, 'shape': list(shape), 'data_offsets': [off, off + len(raw)]}
        data += raw
        off += len(raw)
    h = json.dumps(header).encode()
    h += b' ' * (-len(h) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h)) + h + data)


def st_write(d):
    import torch
    torch.manual_seed(0)
    x = torch.randn(2, 3, 4)
    items = {
        'F32': x, 'F64': x.double(), 'F16': (x * 1000).half(), 'BF16': (x * 1e30).bfloat16(),
        'I64': torch.tensor([-2**63, 2**63 - 1, 3]), 'I32': torch.tensor([-2**31, 5], dtype=torch.int32),
        'I16': torch.tensor([-32768, 32767], dtype=torch.int16), 'I8': torch.tensor([-128, 127], dtype=torch.int8),
        'U8': torch.arange(256, dtype=torch.uint8), 'BOOL': torch.tensor([True, False]),
    }
    tensors, manifest = [], {}
    for dt, t in items.items():
        name = 'layer.' + dt.lower()
        raw = t.view(torch.int16).numpy().tobytes() if dt == 'BF16' else t.numpy().tobytes()
        tensors.append((name, dt, t.shape, raw))
        ref = t.float() if dt in ('F16', 'BF16') else t.int() if dt in ('I16', 'I8') else t
        manifest[name] = {'disk': dt, 'shape': list(t.shape), 'hex': ref.numpy().tobytes().hex()}
    tensors.append(('scalar', 'F32', [], torch.tensor(2.5).numpy().tobytes()))
    manifest['scalar'] = {'disk': 'F32', 'shape': [], 'hex': torch.tensor(2.5).numpy().tobytes().hex()}
    tensors.append(('empty', 'F32', [0, 4], b''))
    manifest['empty'] = {'disk': 'F32', 'shape': [0, 4], 'hex': ''}
    st_write_file(os.path.join(d, 'py.safetensors'), tensors, {'format': 'pt', 'note': 'written by interop.py'})
    # every 16-bit pattern, as F16 and BF16, with torch's float32 widening as the reference
    bits = torch.arange(-32768, 32768, dtype=torch.int32).to(torch.int16)
    f16, bf16 = bits.view(torch.float16), bits.view(torch.bfloat16)
    st_write_file(os.path.join(d, 'all16.safetensors'), [
        ('f16', 'F16', [65536], bits.numpy().tobytes()), ('bf16', 'BF16', [65536], bits.numpy().tobytes()),
        ('f16_as_f32', 'F32', [65536], f16.float().numpy().tobytes()),
        ('bf16_as_f32', 'F32', [65536], bf16.float().numpy().tobytes())])
    with open(os.path.join(d, 'manifest.json'), 'w') as f:
        json.dump({'metadata': {'format': 'pt', 'note': 'written by interop.py'}, 'tensors': manifest}, f)


def st_read(path):
    raw = open(path, 'rb').read()
    (n,) = struct.unpack('<Q', raw[:8])
    assert n % 8 == 0, 'header length %d is not a multiple of 8' % n
    text = raw[8:8 + n].decode('utf-8')
    assert text.rstrip(' ') == text.rstrip(), 'header padding is not spaces'
    pairs = json.loads(text, object_pairs_hook=lambda kv: kv)
    data, pos, out, meta = raw[8 + n:], 0, [], None
    for name, info in pairs:
        if name == '__metadata__':
            meta = dict(info)
            continue
        info = dict(info)
        b, e = info['data_offsets']
        assert b == pos, (path, name, 'not packed in order')
        pos = e
        out.append((name, info['dtype'], info['shape'], data[b:e]))
    assert pos == len(data), (path, 'trailing bytes')
    return out, meta


def st_check(d):
    import torch
    manifest = json.load(open(os.path.join(d, 'manifest.json')))
    for fname, spec in manifest['files'].items():
        tensors, meta = st_read(os.path.join(d, fname))
        assert meta == spec['metadata'], (fname, meta)
        assert [t[0] for t in tensors] == [s['name'] for s in spec['tensors']], (fname, 'order')
        for (name, dt, shape, raw), s in zip(tensors, spec['tensors']):
            assert dt == s['disk'] and shape == s['shape'], (fname, name, dt, shape, s)
            src = bytes.fromhex(s['hex'])
            if dt in ('F16', 'BF16') and s['from'] == 'float32':
                f = torch.from_numpy(np.frombuffer(src, dtype='<f4').copy())
                ref = f.half() if dt == 'F16' else f.bfloat16()
                got = torch.from_numpy(np.frombuffer(raw, dtype='<i2').copy()).view(ref.dtype)
                nan = torch.isnan(f)
                assert torch.equal(torch.isnan(got), nan), (fname, name, 'NaN positions')
                assert torch.equal(got[~nan].view(torch.int16), ref[~nan].view(torch.int16)), (fname, name, 'rounding')
                np16 = f.numpy().astype(np.float16)  # numpy agrees with torch for F16 (round to nearest even)
                if dt == 'F16':
                    assert np.array_equal(np16[~nan.numpy()].view('<i2'), got.numpy()[~nan.numpy()].view('<i2'))
            else:
                assert raw == src, (fname, name, 'bytes differ')
    print('OK', len(manifest['files']))


if __name__ == '__main__':
    {'npy-write': npy_write, 'npy-check': npy_check, 'st-write': st_write, 'st-check': st_check}[sys.argv[1]](sys.argv[2])
