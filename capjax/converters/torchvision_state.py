"""torchvision state dicts -> capjax params (VGG, ResNet, Inception, AlexNet).

Conv kernels go from OIHW to HWIO, linear weights from [out, in] to
[in, out]; VGG's and AlexNet's fc6 rows are reordered from torch's (C, H, W)
flatten to (H, W, C); batch norm (epsilon 1e-5, Inception's 1e-3) is
folded. ResNets are v1.5 (stride on the 3x3 conv); Inception-v3 expects
inputs in [-1, 1], as torchvision's pretrained Inception does through
`transform_input=True` (its auxiliary classifier is dropped).
"""

import re

import numpy as np

from capjax import converters
from capjax.models.encoders import alexnet
from capjax.models.encoders import inception_v3
from capjax.models.encoders import resnet
from capjax.models.encoders import vgg

RESNET_EPSILON = 1e-5
INCEPTION_EPSILON = 1e-3
VGG_POOL = 7


def read(path: str) -> dict[str, np.ndarray]:
  """The float32 arrays of a torch state dict file (`.pth`)."""
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise converters.ConversionError(
        'Reading torch files needs torch: pip install torch (CPU is '
        'enough).') from None
  try:
    state = torch.load(path, map_location='cpu', weights_only=True)
  except Exception as e:  # pylint: disable=broad-except
    first = (str(e).splitlines() or [''])[0].split('. ')[0].rstrip('.')
    raise converters.ConversionError(
        f'{path}: not a readable torch file, truncated or damaged '
        f'({type(e).__name__}: {first}).') from None
  if isinstance(state, dict) and 'state_dict' in state:
    state = state['state_dict']
  if not isinstance(state, dict):
    raise converters.ConversionError(
        f'{path}: holds a {type(state).__name__}, not a state dict (save '
        'model.state_dict()).')
  return {k.removeprefix('module.'): v.detach().float().numpy()
          for k, v in state.items() if hasattr(v, 'detach')}


def _get(state, key, path):
  if key not in state:
    raise converters.ConversionError(
        f'{path}: no {key!r} (a truncated file or another architecture?).')
  return state[key]


def _hwio(kernel):
  return np.ascontiguousarray(np.transpose(kernel, (2, 3, 1, 0)))


def _conv_bn(state, conv, bn, epsilon, path):
  return {
      'conv': {'kernel': _hwio(_get(state, f'{conv}.weight', path))},
      'bn': converters.fold_batch_norm(
          _get(state, f'{bn}.weight', path), _get(state, f'{bn}.bias', path),
          _get(state, f'{bn}.running_mean', path),
          _get(state, f'{bn}.running_var', path), epsilon),
  }


def _fc6(state, key, channels, side, path):
  """fc6 (`key`) over a torch (C, H, W) flatten -> kernel of (H, W, C) rows."""
  fc6 = _get(state, key, path)
  if fc6.ndim != 2 or fc6.shape[1] != channels * side * side:
    raise converters.ConversionError(
        f'{path}: {key} is {tuple(fc6.shape)}, not [4096, {channels} x {side} '
        f'x {side}] (another architecture?).')
  # torch flattens the pool as (C, H, W); capjax as (H, W, C). One copy.
  fc6 = fc6.reshape(-1, channels, side, side).transpose(2, 3, 1, 0)
  return fc6.reshape(-1, fc6.shape[-1])


def _alexnet(arch, state, path):
  """torchvision's AlexNet: features.{0,3,6,8,10}, classifier.{1,4}."""
  del arch
  indices = sorted(int(m.group(1)) for k in state
                   if (m := re.match(r'^features\.(\d+)\.weight$', k)))
  if indices != [0, 3, 6, 8, 10]:
    raise converters.ConversionError(
        f'{path}: convs at features.{indices}; torchvision\'s alexnet has '
        'them at features.[0, 3, 6, 8, 10] (another architecture?).')
  params = {}
  for number, (index, (channels, kernel, _, _)) in enumerate(
      zip(indices, alexnet.CONVS), 1):
    weight = state[f'features.{index}.weight']
    if weight.shape[0] != channels or weight.shape[2:] != (kernel, kernel):
      raise converters.ConversionError(
          f'{path}: features.{index} is {tuple(weight.shape)}; alexnet\'s '
          f'conv{number} has {channels} {kernel}x{kernel} kernels.')
    params[f'conv{number}'] = {
        'kernel': _hwio(weight),
        'bias': _get(state, f'features.{index}.bias', path)}
  params['fc6'] = {
      'kernel': _fc6(state, 'classifier.1.weight', alexnet.CONVS[-1][0],
                     alexnet.POOL_TO, path),
      'bias': _get(state, 'classifier.1.bias', path)}
  params['fc7'] = {'kernel': _get(state, 'classifier.4.weight', path).T,
                   'bias': _get(state, 'classifier.4.bias', path)}
  return {'preprocessing': 'torch', 'pool_to': alexnet.POOL_TO}, params, 224


def _vgg(arch, state, path):
  depth = int(arch[3:])
  indices = sorted(int(m.group(1)) for k in state
                   if (m := re.match(r'^features\.(\d+)\.weight$', k)))
  if any(f'features.{i}.running_mean' in state for i in range(64)):
    raise converters.ConversionError(
        f'{path}: a VGG with batch norm (vgg{depth}_bn); capjax reads the '
        'plain VGG.')
  conv_indices = [i for i in indices if state[f'features.{i}.weight'].ndim == 4]
  want = sum(vgg.BLOCKS[depth])
  if len(conv_indices) != want:
    raise converters.ConversionError(
        f'{path}: {len(conv_indices)} conv layers under features.*; {arch} '
        f'has {want}.')
  params = {}
  names = [f'conv{b}_{i}' for b, n in enumerate(vgg.BLOCKS[depth], 1)
           for i in range(1, n + 1)]
  for name, index in zip(names, conv_indices):
    params[name] = {'kernel': _hwio(state[f'features.{index}.weight']),
                    'bias': _get(state, f'features.{index}.bias', path)}
  params['fc6'] = {
      'kernel': _fc6(state, 'classifier.0.weight', vgg.CHANNELS[-1],
                     VGG_POOL, path),
      'bias': _get(state, 'classifier.0.bias', path)}
  params['fc7'] = {'kernel': _get(state, 'classifier.3.weight', path).T,
                   'bias': _get(state, 'classifier.3.bias', path)}
  fields = {'depth': depth, 'preprocessing': 'torch', 'pool_to': VGG_POOL}
  return fields, params, 224


def _resnet(arch, state, path):
  depth = int(arch[6:])
  params = {'stem': _conv_bn(state, 'conv1', 'bn1', RESNET_EPSILON, path)}
  for stage, blocks in enumerate(resnet.STAGES[depth], 1):
    found = {int(m.group(1)) for k in state
             if (m := re.match(rf'^layer{stage}\.(\d+)\.', k))}
    if len(found) != blocks:
      raise converters.ConversionError(
          f'{path}: layer{stage} has {len(found)} blocks; {arch} has '
          f'{blocks} (another depth?).')
    for block in range(blocks):
      prefix = f'layer{stage}.{block}'
      if f'{prefix}.conv3.weight' not in state:
        raise converters.ConversionError(
            f'{path}: no {prefix}.conv3 (a basic-block ResNet-18/34, or '
            'truncated?).')
      units = {f'conv{k}': _conv_bn(state, f'{prefix}.conv{k}',
                                    f'{prefix}.bn{k}', RESNET_EPSILON, path)
               for k in (1, 2, 3)}
      if block == 0:
        units['shortcut'] = _conv_bn(state, f'{prefix}.downsample.0',
                                     f'{prefix}.downsample.1',
                                     RESNET_EPSILON, path)
      params[f'stage{stage + 1}_block{block + 1}'] = units
  fields = {'depth': depth, 'preprocessing': 'torch', 'stride_on': '3x3'}
  return fields, params, 224


def _inception(arch, state, path):
  convs = [k[:-len('.conv.weight')] for k in state
           if k.endswith('.conv.weight') and not k.startswith('AuxLogits.')]
  want = inception_v3.NUM_UNITS
  if len(convs) != want:
    raise converters.ConversionError(
        f'{path}: {len(convs)} conv layers outside AuxLogits; {arch} has '
        f'{want}.')
  params = {f'unit{i:02d}': _conv_bn(state, f'{name}.conv', f'{name}.bn',
                                     INCEPTION_EPSILON, path)
            for i, name in enumerate(convs)}
  fields = {'preprocessing': 'inception', 'pool_counts_padding': True}
  return fields, params, 299


def convert(arch: str, path: str):
  """(encoder fields, params, image side) of a torchvision state dict file."""
  state = read(path)
  if arch == 'alexnet':
    return _alexnet(arch, state, path)
  if arch.startswith('vgg'):
    return _vgg(arch, state, path)
  if arch.startswith('resnet'):
    return _resnet(arch, state, path)
  return _inception(arch, state, path)
