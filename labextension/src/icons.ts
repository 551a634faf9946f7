/**
 * The extension's icon: a rising curve over axes, in TensorBoard's orange.
 */
import { LabIcon } from '@jupyterlab/ui-components';

import tensorboardSvg from '../style/icons/tensorboard.svg';

export const tensorboardIcon = new LabIcon({
  name: 'jupyter-forgather-tb:tensorboard',
  svgstr: tensorboardSvg
});
