/** GET /v1/models and GET /v1/models/{id}: the names the server answers to (`serve --model-name`), as OpenAI model cards. */
import { randomUUID } from 'node:crypto';
import { ApiError, ErrorCode } from './errors.ts';
import { sendJson, type Exchange } from './http.ts';
import type { ServeApp } from './app.ts';

export async function listModels(app: ServeApp, ex: Exchange): Promise<string> {
  sendJson(ex.res, 200, { object: 'list', data: app.modelNames.map((id) => modelCard(id, app.created)) });
  return '';
}

/** The card of the name the route's pattern captured (URL-encoded). */
export async function retrieveModel(app: ServeApp, ex: Exchange): Promise<string> {
  const name = decodeURIComponent(ex.params[0]);
  if (!app.modelNames.includes(name)) throw new ApiError(ErrorCode.INVALID_MODEL, `The model '${name}' does not exist (served: ${app.modelNames.join(', ')})`, 404);
  sendJson(ex.res, 200, modelCard(name, app.created));
  return '';
}

/** A model card as FastChat writes it; `created` is when the server started. */
function modelCard(id: string, created: number) {
  return {
    id,
    object: 'model',
    created,
    owned_by: 'wgpu-char',
    root: id,
    parent: null,
    permission: [
      {
        id: `modelperm-${randomUUID().replaceAll('-', '')}`,
        object: 'model_permission',
        created,
        allow_create_engine: false,
        allow_sampling: true,
        allow_logprobs: false,
        allow_search_indices: true,
        allow_view: true,
        allow_fine_tuning: false,
        organization: '*',
        group: null,
        is_blocking: false,
      },
    ],
  };
}
