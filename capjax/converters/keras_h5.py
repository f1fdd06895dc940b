"""Keras weights files -> capjax params (VGG, ResNet, Inception-v3).

Two layouts are read: the legacy HDF5 one (`model.save_weights('x.h5')` in
Keras 2 and keras-applications' released files: the root or its
`model_weights` group lists `layer_names`, each layer group its
`weight_names`, whose last part is the role; in Keras 1 files, such as
`block1_conv1_W_1:0`, it is not, and the order decides) and Keras 3's
`.weights.h5` (`layers/<path>/vars/0..`, the layer's name in the `vars`
group's `name` attribute; the order decides). Both become
{layer name: {role: array}} with roles kernel, bias, gamma, beta,
moving_mean, moving_variance.

Layers are found by name: VGG's `block1_conv1` .. `fc2`; ResNet's two
naming schemes (keras-applications' `resnet50.py`, `res2a_branch2a` and
`bn2a_branch2a`, batch-norm epsilon 1e-3; `resnet_common.py` and Keras 3,
`conv2_block1_1_conv`, epsilon 1.001e-5); Inception-v3's automatic names
(`conv2d_N`, `batch_normalization_N`) in creation order, i.e. sorted by N,
which is the order the network's code makes them (the file's layer order is
the graph's, which is not).
"""

import math
import re

import h5py
import numpy as np

from capjax import converters
from capjax.models.encoders import inception_v3
from capjax.models.encoders import resnet
from capjax.models.encoders import vgg

BN_ROLES = ('gamma', 'beta', 'moving_mean', 'moving_variance')
KNOWN_ROLES = {'kernel', 'bias', *BN_ROLES}
INCEPTION_EPSILON = 1e-3
RESNET_EPSILON = {'common': 1.001e-5, 'legacy': 1e-3}


def read(path: str) -> dict[str, dict[str, np.ndarray]]:
  """{layer name: {role: float32 array}} of a Keras `.h5` weights file."""
  try:
    f = h5py.File(path, 'r')
  except OSError as e:
    raise converters.ConversionError(
        f'{path}: not a readable HDF5 file ({e}).') from None
  try:
    with f:
      root = f['model_weights'] if 'model_weights' in f else f
      if 'layer_names' in root.attrs:
        return _read_legacy(root)
      if 'layers' in f:
        return _read_keras3(f['layers'])
  except (OSError, KeyError, ValueError) as e:
    raise converters.ConversionError(
        f'{path}: damaged or truncated weights file ({e}).') from None
  raise converters.ConversionError(
      f'{path}: HDF5 but not a Keras weights file (neither layer_names nor '
      'a layers group).')


def _text(value) -> str:
  return value.decode('utf8') if isinstance(value, bytes) else str(value)


def _read_legacy(root) -> dict:
  out = {}
  for name in map(_text, root.attrs['layer_names']):
    group = root[name]
    weight_names = list(map(_text, group.attrs['weight_names']))
    if not weight_names:
      continue
    arrays = [np.asarray(group[w], np.float32) for w in weight_names]
    roles = [w.split('/')[-1].split(':')[0] for w in weight_names]
    if not set(roles) <= KNOWN_ROLES:  # Keras 1 files: block1_conv1_W_1:0
      roles = _positional_roles(arrays)
    out[name] = dict(zip(roles, arrays))
  return out


def _positional_roles(arrays) -> tuple[str, ...]:
  """Roles from the order Keras keeps a layer's weights in."""
  if arrays[0].ndim >= 2:
    return ('kernel', 'bias')
  if len(arrays) == 4:
    return BN_ROLES
  if len(arrays) == 3:
    return BN_ROLES[1:]  # batch norm with scale=False (Inception-v3)
  return tuple(str(i) for i in range(len(arrays)))


def _read_keras3(layers) -> dict:
  out = {}
  for key in layers:
    group = layers[key]
    if 'vars' not in group or not len(group['vars']):
      continue
    variables = group['vars']
    name = _text(variables.attrs.get('name', key))
    arrays = [np.asarray(variables[str(i)], np.float32)
              for i in range(len(variables))]
    out[name] = dict(zip(_positional_roles(arrays), arrays))
  return out


def _layer(layers, name, path):
  if name not in layers:
    raise converters.ConversionError(
        f'{path}: no layer {name!r} (a truncated file or another '
        'architecture?).')
  return layers[name]


def _conv_bn(conv, bn, epsilon):
  gamma = bn.get('gamma', np.ones_like(bn['beta']))
  return {
      'conv': {'kernel': conv['kernel']},
      'bn': converters.fold_batch_norm(
          gamma, bn['beta'], bn['moving_mean'], bn['moving_variance'],
          epsilon, conv.get('bias')),
  }


def _vgg(arch, layers, path):
  depth = int(arch[3:])
  params = {}
  for block, convs in enumerate(vgg.BLOCKS[depth], 1):
    for i in range(1, convs + 1):
      layer = _layer(layers, f'block{block}_conv{i}', path)
      params[f'conv{block}_{i}'] = {'kernel': layer['kernel'],
                                    'bias': layer['bias']}
  if f'block{block}_conv{convs + 1}' in layers:
    raise converters.ConversionError(
        f'{path}: has block5_conv{convs + 1}, which {arch} has not (VGG-19?).')
  for mine, theirs in (('fc6', 'fc1'), ('fc7', 'fc2')):
    layer = _layer(layers, theirs, path)
    params[mine] = {'kernel': layer['kernel'], 'bias': layer['bias']}
  cells = params['fc6']['kernel'].shape[0] / vgg.CHANNELS[-1]
  side = round(math.sqrt(cells))
  if side * side != cells:
    raise converters.ConversionError(
        f'{path}: fc1 takes {params["fc6"]["kernel"].shape[0]} inputs, not '
        '512 x a square grid (another architecture?).')
  fields = {'depth': depth, 'preprocessing': 'caffe', 'pool_to': 0}
  return fields, params, 32 * side


def _legacy_block(stage, block, layers):
  """The block suffix of keras-applications' names: a, b, c or b1, b2, ..."""
  letter = chr(ord('a') + block)
  if block == 0 or f'res{stage}{letter}_branch2a' in layers:
    return letter
  return f'b{block}'


def _resnet(arch, layers, path):
  depth = int(arch[6:])
  if 'post_bn' in layers:
    raise converters.ConversionError(
        f'{path}: a ResNet v2 (pre-activation) file; capjax reads v1.')
  scheme = 'common' if 'conv1_conv' in layers else 'legacy'
  epsilon = RESNET_EPSILON[scheme]

  def unit(stage, block, k):
    if scheme == 'common':
      prefix = f'conv{stage}_block{block + 1}_{k}'
      return (_layer(layers, f'{prefix}_conv', path),
              _layer(layers, f'{prefix}_bn', path))
    suffix = _legacy_block(stage, block, layers) + (
        '_branch1' if k == 0 else f'_branch2{"abc"[k - 1]}')
    return (_layer(layers, f'res{stage}{suffix}', path),
            _layer(layers, f'bn{stage}{suffix}', path))

  if scheme == 'common':
    stem = (_layer(layers, 'conv1_conv', path),
            _layer(layers, 'conv1_bn', path))
  else:
    stem = (_layer(layers, 'conv1', path), _layer(layers, 'bn_conv1', path))
  params = {'stem': _conv_bn(*stem, epsilon)}
  for stage, blocks in enumerate(resnet.STAGES[depth], 2):
    for block in range(blocks):
      names = {'conv1': 1, 'conv2': 2, 'conv3': 3}
      if block == 0:
        names['shortcut'] = 0
      params[f'stage{stage}_block{block + 1}'] = {
          mine: _conv_bn(*unit(stage, block, k), epsilon)
          for mine, k in names.items()}
    extra = (f'conv{stage}_block{blocks + 1}_1_conv' if scheme == 'common'
             else f'res{stage}{_legacy_block(stage, blocks, layers)}_branch2a')
    if extra in layers:
      raise converters.ConversionError(
          f'{path}: stage {stage} has more than {blocks} blocks ({extra}); '
          f'not a {arch}.')
  fields = {'depth': depth, 'preprocessing': 'caffe', 'stride_on': '1x1'}
  return fields, params, 224


def _numbered(layers, prefix):
  pattern = re.compile(rf'^{prefix}(?:_(\d+))?$')
  found = [(int(m.group(1) or 0), name) for name in layers
           if (m := pattern.match(name))]
  return [layers[name] for _, name in sorted(found)]


def _inception(arch, layers, path):
  convs = _numbered(layers, 'conv2d')
  bns = _numbered(layers, 'batch_normalization')
  want = inception_v3.NUM_UNITS
  if len(convs) != want or len(bns) != want:
    raise converters.ConversionError(
        f'{path}: {len(convs)} conv2d_N and {len(bns)} batch_normalization_N '
        f'layers; {arch} has {want} of each.')
  params = {f'unit{i:02d}': _conv_bn(conv, bn, INCEPTION_EPSILON)
            for i, (conv, bn) in enumerate(zip(convs, bns))}
  fields = {'preprocessing': 'inception', 'pool_counts_padding': False}
  return fields, params, 299


def convert(arch: str, path: str):
  """(encoder fields, params, image side) of a Keras weights file."""
  layers = read(path)
  if arch.startswith('vgg'):
    return _vgg(arch, layers, path)
  if arch.startswith('resnet'):
    return _resnet(arch, layers, path)
  return _inception(arch, layers, path)
