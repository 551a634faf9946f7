/**
 * Plugin wiring: the TensorBoard sidebar, its commands, stall notices, and tab
 * restoration.
 */
import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import {
  ICommandPalette,
  MainAreaWidget,
  WidgetTracker
} from '@jupyterlab/apputils';
import { PageConfig } from '@jupyterlab/coreutils';
import { IDefaultFileBrowser } from '@jupyterlab/filebrowser';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { IStateDB } from '@jupyterlab/statedb';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';
import {
  ReadonlyJSONObject,
  ReadonlyPartialJSONObject
} from '@lumino/coreutils';

import { TensorBoardAPI } from './api';
import { addCommands, clearEnded, confirmKill, viewArgs } from './commands';
import {
  IFormValues,
  ILaunchDefaults,
  restoreValues,
  valuesFromDefaults
} from './form';
import { JobsModel, waitSettled } from './model';
import { notebookPage, requestedJob } from './notebook7';
import { PreviewsModel, TagMemory } from './previews';
import { StallNotices } from './stalls';
import {
  CommandIDs,
  IJob,
  PLUGIN_ID,
  SIDEBAR_ID,
  STATE_KEY,
  TRANSLATION_DOMAIN
} from './tokens';
import { OutputView } from './widgets/outputView';
import { TensorBoardSidebar } from './widgets/sidebar';
import { TensorBoardView } from './widgets/tensorboardView';

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'Launch TensorBoard on a log directory and open it in a tab.',
  autoStart: true,
  optional: [
    ICommandPalette,
    ISettingRegistry,
    IStateDB,
    ILayoutRestorer,
    IDefaultFileBrowser,
    ITranslator
  ],
  activate: (
    app: JupyterFrontEnd,
    palette: ICommandPalette | null,
    settingRegistry: ISettingRegistry | null,
    state: IStateDB | null,
    restorer: ILayoutRestorer | null,
    fileBrowser: IDefaultFileBrowser | null,
    translator: ITranslator | null
  ) => {
    const trans = (translator ?? nullTranslator).load(TRANSLATION_DOMAIN);
    const api = new TensorBoardAPI(app.serviceManager.serverSettings);
    const model = new JobsModel(api);
    let defaults = valuesFromDefaults({});

    const settingsLoaded = (
      settingRegistry ? settingRegistry.load(PLUGIN_ID) : Promise.resolve(null)
    ).then(
      settings => {
        const read = () => {
          defaults = valuesFromDefaults(settings!.composite as ILaunchDefaults);
          model.interval =
            (settings!.composite.refreshInterval as number) * 1000;
          sidebar.update();
        };
        if (settings) {
          read();
          settings.changed.connect(read);
        }
      },
      reason => console.warn(`${PLUGIN_ID}: settings not loaded`, reason)
    );
    const initial = settingsLoaded.then(async () => {
      const saved = state
        ? await state.fetch(STATE_KEY).catch(() => null)
        : null;
      return restoreValues(saved, defaults);
    });

    const views = new WidgetTracker<MainAreaWidget<TensorBoardView>>({
      namespace: 'forgather-tb'
    });
    const outputs = new WidgetTracker<MainAreaWidget<OutputView>>({
      namespace: 'forgather-tb-output'
    });

    const previews = new PreviewsModel(model, new TagMemory(state));
    const openJob = (job: IJob) =>
      void app.commands.execute(CommandIDs.openJob, {
        ...viewArgs(model, job)
      });

    const sidebar = new TensorBoardSidebar({
      model,
      trans,
      previews,
      defaults: () => defaults,
      initial,
      browseFolder: () => (fileBrowser ? fileBrowser.model.path : null),
      remember: (values: IFormValues) =>
        void state?.save(STATE_KEY, values as unknown as ReadonlyJSONObject),
      open: openJob,
      showOutput: job =>
        void app.commands.execute(CommandIDs.showOutput, {
          id: job.id,
          title: job.label
        }),
      kill: job => confirmKill(model, job, trans),
      relaunch: async (job, memoryLimit) => {
        await app.commands.execute(CommandIDs.relaunch, {
          id: job.id,
          ...(memoryLimit === undefined ? {} : { memoryLimit })
        });
      },
      clear: () => clearEnded(model, trans),
      waitSettled: id => waitSettled(api, id),
      underHub: Boolean(PageConfig.getOption('hubUser'))
    });
    sidebar.id = SIDEBAR_ID;
    app.shell.add(sidebar, 'left', { rank: 600 });

    addCommands({ app, model, trans, sidebar, views, outputs, fileBrowser });
    new StallNotices(model, openJob, trans);
    model.start();
    if (palette) {
      for (const command of [CommandIDs.launch, CommandIDs.showJobs]) {
        palette.addItem({
          command,
          category: trans.__('TensorBoard'),
          args: { isPalette: true }
        });
      }
    }
    if (restorer) {
      restorer.add(sidebar, SIDEBAR_ID);
      void restorer.restore(views, {
        command: CommandIDs.openJob,
        args: widget =>
          widget.content.args as unknown as ReadonlyPartialJSONObject,
        name: widget => widget.id
      });
    }
    const requested = notebookPage() === 'tree' ? requestedJob() : null;
    if (requested) {
      // Notebook 7's file browser page, opened to show a job's tab.
      void app.restored.then(() =>
        app.commands.execute(CommandIDs.openJob, {
          id: requested,
          title: trans.__('TensorBoard'),
          url: ''
        })
      );
    }
  }
};

export default plugin;
